"""The attempt directory: the durable record one supervisor keeps of one attempt at a job.

Layout: `<jobs dir>/<job id>/` is the job's home (its default working directory, kept across
attempts so a requeued job finds what it left there); each attempt has its own directory in it,
`attempt-<n>/`. A job started before attempts had directories of their own keeps its files in
its home, which then stands for attempt 1.

Files of an attempt (each JSON written atomically, tmp + fsync + rename):
- `launch.json`  what to run; written by the executor before the supervisor starts.
- `lock`         held (flock) by the live supervisor for as long as it runs.
- `attempt.json` written by the supervisor *before* it spawns the command: once it exists the
                 command is never spawned again, so an attempt runs at most once.
- `started.json` pid and start time, after the spawn.
- `exit.json`    outcome, exit code, end time, usage: the supervisor's last word.
- `cancel`       present when a cancel was asked for.
- `preempt`      present when a preemption was asked for (a cancel, if both, wins).
- `output.log`   the attempt's stdout and stderr.
- `tmp/`         the attempt's /tmp (its identity's), emptied when the attempt ends.

The attempt directory is the facility's (0700): the job sees none of it, so it can neither read
its launch record nor forge its outcome.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any


class JobDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def launch(self) -> Path:
        return self.root / "launch.json"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def attempt(self) -> Path:
        return self.root / "attempt.json"

    @property
    def started(self) -> Path:
        return self.root / "started.json"

    @property
    def exit(self) -> Path:
        return self.root / "exit.json"

    @property
    def cancel(self) -> Path:
        return self.root / "cancel"

    @property
    def preempt(self) -> Path:
        return self.root / "preempt"

    @property
    def log(self) -> Path:
        return self.root / "output.log"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def supervisor_alive(self) -> bool:
        """True while a supervisor holds the lock (probed without waiting)."""
        if not self.lock.exists():
            return False
        with open(self.lock, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
            return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
