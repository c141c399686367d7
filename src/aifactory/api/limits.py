"""Refuse request bodies over a size limit before they are read into memory (HTTP 413)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, uploads: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = dict(uploads or {})  # path → its own limit: POSTs of files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self.uploads.get(scope["path"]) if scope.get("method") == "POST" else None
        if upload is not None:
            await BodySizeLimit(self.app, upload)(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False
        too_large = replaced = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                too_large = True
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started, replaced
            if too_large and not started:
                # The app caught BodyTooLarge (FastAPI answers 400 "error parsing the body"):
                # send the 413 in place of whatever it answers.
                started = replaced = True
                await self._refuse(send)
            if replaced:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "payload_too_large",
                "message": f"the request body is larger than {self.max_bytes} bytes",
                "errors": [{"field": "body", "reason": f"larger than {self.max_bytes} bytes"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
