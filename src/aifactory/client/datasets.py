"""The SDK's dataset calls. `Client` mixes them in; they use its plumbing (`_call`)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class DatasetCalls:
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
