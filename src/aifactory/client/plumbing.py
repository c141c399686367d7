"""What the SDK's groups of calls (accounting, audit, datasets, GDPR) need from `Client`: they
are mixed into it and reach the API only through these methods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection


class Plumbing:
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request; the decoded JSON answer, or ApiError."""
        raise NotImplementedError

    def _download(self, path: str, *, params: dict[str, Any] | None = None) -> bytes:
        """A GET whose answer is a file (PDF, CSV, ZIP)."""
        raise NotImplementedError

    def _upload(self, path: str, file: BinaryIO, *, params: dict[str, Any] | None = None) -> Any:
        """A POST whose body is a file, streamed (an image's tar)."""
        raise NotImplementedError

    def _lines(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[str]:
        """A GET whose answer streams lines (JSON Lines)."""
        raise NotImplementedError

    def _websocket(self, path: str) -> ClientConnection:
        """A WebSocket to the API (its first message: refused, ApiError)."""
        raise NotImplementedError
