"""A real facility process (`python -m aifactory up`) for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aifactory.client import Client
from tests.postgres import free_port

TOKEN_LINE = re.compile(r"^admin token: (afy_\S+)$", re.MULTILINE)
PASSWORD_LINE = re.compile(r"^portal: \S+  user: admin  password: (\S+)", re.MULTILINE)


class FacilityProcess:
    def __init__(
        self, data_dir: Path, database_url: str, *, virtual_gpus: int | None = 4, cpus: int = 8
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--cpus",
            str(cpus),
            "--database-url",
            database_url,
        ]
        if virtual_gpus is not None:
            self.args += ["--virtual-gpus", str(virtual_gpus)]
        self.env = {**os.environ, "AIFACTORY_CONFIG": str(data_dir / "cli.json")}
        self.proc: subprocess.Popen[str] | None = None
        self.token: str | None = None
        self.password: str | None = None  # the first admin's portal password
        self.starts = 0

    def mail_to(self, port: int) -> None:
        """Send notifications to a test SMTP server on 127.0.0.1 (tests.mailbox), quickly."""
        self.env.update(
            AIFACTORY_SMTP_HOST="127.0.0.1",
            AIFACTORY_SMTP_PORT=str(port),
            AIFACTORY_SMTP_TLS="none",
            AIFACTORY_SMTP_FROM="facility@example.org",
            AIFACTORY_NOTIFY_POLL_S="0.2",
        )

    def start(self, timeout_s: float = 30) -> None:
        self.starts += 1
        log = open(self.data_dir / f"server-{self.starts}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aifactory", "up", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            text=True,
        )
        log.close()
        self._wait_healthy(timeout_s)
        if self.token is None:
            found = TOKEN_LINE.search(self.output(1))
            assert found, f"no admin token line in: {self.output(1)}"
            self.token = found.group(1)
            password = PASSWORD_LINE.search(self.output(1))
            assert password, f"no portal password line in: {self.output(1)}"
            self.password = password.group(1)

    def output(self, start: int) -> str:
        return (self.data_dir / f"server-{start}.log").read_text()

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"facility exited: {self.output(self.starts)}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"facility not healthy in {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> Client:
        return Client(self.url, self.token)

    def kill_leftover_jobs(self) -> None:
        """Tests end with no process of theirs left, whatever happened."""
        for started in (self.data_dir / "jobs").rglob("started.json"):  # every attempt's
            pid = json.loads(started.read_text()).get("pid")  # the local executor's records
            if isinstance(pid, int):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
