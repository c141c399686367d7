"""The SDK's GDPR calls (erasures, processing records, project export and closure). `Client`
mixes them in; they use its plumbing (`_call`, `_download`)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class GdprCalls:
    # ---- plumbing, provided by Client ------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        raise NotImplementedError

    def _download(self, path: str, *, params: dict[str, Any] | None = None) -> bytes:
        raise NotImplementedError
