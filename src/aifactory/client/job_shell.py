"""A command in a running job's sandbox, over the API's WebSocket (`/jobs/{id}/exec`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aifactory.client.plumbing import Plumbing

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection


@dataclass
class JobShell:
    """The command's input (`send`, `eof`, `resize`) and output (`output()`: its bytes as they
    come); `exit_code` once the output has ended."""

    connection: ClientConnection
    exit_code: int | None = None

    def send(self, data: bytes) -> None:
        self.connection.send(data)

    def eof(self) -> None:
        self.connection.send(json.dumps({"eof": True}))

    def resize(self, rows: int, cols: int) -> None:
        self.connection.send(json.dumps({"resize": [rows, cols]}))

    def output(self) -> Iterator[bytes]:
        """Its output until it ends; then `exit_code` is set (None: the connection broke)."""
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self.connection:
                if isinstance(message, bytes):
                    yield message
                    continue
                said = json.loads(message)
                if "error" in said:
                    raise _refusal(said)
                if "exit" in said:
                    self.exit_code = int(said["exit"])
                    return
        except ConnectionClosed:
            return

    def close(self) -> None:
        self.connection.close()


class ShellCalls(Plumbing):
    def job_shell(
        self, job_id: int, command: list[str], *, tty: bool = False, rows: int = 24, cols: int = 80
    ) -> JobShell:
        """Start `command` in the job's sandbox (a terminal with `tty`); ApiError if refused."""
        connection = self._websocket(f"/jobs/{job_id}/exec")
        connection.send(json.dumps({"command": command, "tty": tty, "rows": rows, "cols": cols}))
        return JobShell(connection)

    def exec(
        self,
        job_id: int,
        command: list[str],
        *,
        stdin: bytes = b"",
        output: Callable[[bytes], Any] | None = None,
    ) -> int:
        """Run `command` in the job's sandbox to its end; its exit code. Its output (stdout and
        stderr) goes to `output`, else is dropped."""
        shell = self.job_shell(job_id, command)
        try:
            if stdin:
                shell.send(stdin)
            shell.eof()
            for chunk in shell.output():
                if output is not None:
                    output(chunk)
        finally:
            shell.close()
        if shell.exit_code is None:
            raise ConnectionError(f"the connection to job {job_id} broke")
        return shell.exit_code


def _refusal(said: dict[str, Any]) -> Exception:
    from aifactory.client.client import ApiError

    field = said.get("field")
    errors = [{"field": field, "message": said["error"]}] if field else []
    return ApiError(int(said.get("status") or 400), "refused", str(said["error"]), errors)
