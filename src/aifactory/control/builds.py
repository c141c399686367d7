"""The environment builder: builds queued Python environments, one at a time, on a thread of
the control plane (store.builds has the states; software.envbuild the build).

A build runs pip, and pip runs the packages' own build code: so it runs in the sandbox, as the
builder's identity (`aif-p0`, which no project has; the facility's own where it does not run as
root), with only the environment's directory and a private /tmp writable. Its output goes to
`<software>/envs/<key>.log`, which `aifactory env show` tails while it builds.

A build that was under way when the control plane stopped is queued again at the next start;
its half-made directory is removed first (a whole environment has its marker file).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.software import Software
from aifactory.software import envbuild, layout
from aifactory.store import builds
from aifactory.store.db import Database

log = logging.getLogger("aifactory.builds")
IDLE_S = 1.0


@dataclass(frozen=True, slots=True)
class BuilderConfig:
    software_dir: Path
    index_url: str | None
    find_links: tuple[Path, ...] = ()  # wheelhouses, read-only in the build
    memory_mb: int = 8192  # what one build may take of this host (its control group)
    timeout_s: float = 1800.0


class EnvironmentBuilder:
    def __init__(
        self,
        db: Database,
        config: BuilderConfig,
        *,
        identity: Callable[[], Identity],
        software: Software,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.config = config
        self.identity = identity  # looked up (or made) at the first build, not at start
        self.software = software
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        with self.db.session() as session:
            again = builds.requeue_interrupted(session, gone=_gone)
        if again:
            log.info("queued %d interrupted environment build(s) again", again)
        while not stop.is_set():
            try:
                built = self.step()
            except Exception:  # a broken build never stops the builder
                log.exception("environment builder")
                built = False
            if not built:
                self._wake.wait(IDLE_S)
                self._wake.clear()

    def step(self) -> bool:
        """Build the oldest queued environment; False when none waits."""
        with self.db.session() as session:
            build = builds.claim_build(session, builder=self.holder, now=self.clock())
            if build is None:
                return False
            key, wanted, python = build.key, list(build.requirements), build.python
        root = self.config.software_dir
        try:
            done = envbuild.build_environment(
                layout.environment_dir(root, key),
                wanted,
                interpreter=envbuild.find_python(python),
                index=self.config.index_url,
                identity=self.identity(),
                software=self.software,
                log=layout.build_log(root, key),
                timeout_s=self.config.timeout_s,
                find_links=self.config.find_links,
                limits=envbuild.BuildLimits(key, memory_mb=self.config.memory_mb),
            )
        except Exception as exc:
            message = str(exc) if isinstance(exc, envbuild.BuildError) else f"build error: {exc}"
            with self.db.session() as session:
                builds.finish_build(session, key, now=self.clock(), error=message)
            return True
        with self.db.session() as session:
            builds.finish_build(
                session,
                key,
                now=self.clock(),
                packages=list(done.packages),
                python_version=done.python,
                size_bytes=done.size_bytes,
            )
        return True


def _gone(holder: str) -> bool:
    """Whether the builder `host:pid` is no longer running (on this host: its pid is gone;
    another host's builder is taken as gone only by its own host's start)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return False
    return not (pid.isdigit() and int(pid) != os.getpid() and psutil.pid_exists(int(pid)))
