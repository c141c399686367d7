"""The composition root: build a facility from `Settings` and run it in one process.

Embedded shape (DESIGN.md §6): migrations, first-start bootstrap, the local executor, the
control loop on a thread, and the API served by uvicorn. Stopping (SIGINT/SIGTERM) leaves the
jobs running under their supervisors; the next start reconciles them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from aifactory.api.app import create_app
from aifactory.api.deps import AppState
from aifactory.config import Settings
from aifactory.control.loop import ControlLoop
from aifactory.executors.base import Executor
from aifactory.executors.local.executor import LocalConfig, LocalExecutor
from aifactory.scheduler import Policy
from aifactory.services.bootstrap import bootstrap
from aifactory.store import flags
from aifactory.store.db import Database
from aifactory.store.migrate import upgrade

log = logging.getLogger("aifactory")


@dataclass
class Facility:
    settings: Settings
    db: Database
    executor: Executor
    loop: ControlLoop
    admin_token: str | None  # set only on the very first start


def build(settings: Settings, clock: Callable[[], float] = time.time) -> Facility:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        token = bootstrap(session, now=clock())
        if settings.paused:
            flags.set_admission_paused(session, True)
    executor = make_executor(settings)
    loop = ControlLoop(db, executor, Policy(settings.policy), clock, tick_s=settings.tick_s)
    return Facility(settings, db, executor, loop, token)


def make_executor(settings: Settings) -> Executor:
    if settings.executor != "local":
        raise ValueError(f"executor {settings.executor!r} is not available yet (issue #6)")
    return LocalExecutor(
        LocalConfig(
            jobs_dir=settings.jobs_dir,
            site=settings.site,
            virtual_gpus=settings.virtual_gpus,
            cpus=settings.cpus,
            memory_mb=settings.memory_mb,
            grace_s=settings.grace_s,
        )
    )


def serve(facility: Facility) -> None:
    """Run the control loop and the API until SIGINT/SIGTERM."""
    stop = threading.Event()
    ticked = threading.Event()
    facility.loop.tick()  # reconcile and register nodes before answering anyone
    ticked.set()
    thread = threading.Thread(
        target=facility.loop.run, args=(stop,), name="control-loop", daemon=True
    )
    thread.start()
    state = AppState(
        db=facility.db,
        clock=time.time,
        locate_log=facility.executor.log_path,
        on_submit=facility.loop.wake,
        ready=ticked.is_set,
    )
    app = create_app(state, max_body_bytes=facility.settings.max_body_bytes)
    config = uvicorn.Config(
        app,
        host=facility.settings.host,
        port=facility.settings.port,
        log_level="warning",
        access_log=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
        facility.loop.wake()
        thread.join(timeout=5)
        facility.db.dispose()
