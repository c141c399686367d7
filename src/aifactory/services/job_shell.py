"""A shell in a running job (`aifactory exec JOB -- CMD`, `aifactory attach JOB`): who may,
on which attempt, audited. The command runs in the job's sandbox (executors.local.enter): it
can do what the job can, nothing more.

Who may (Action.SESSION_USE): the one who submitted the job, and the project's owners; a
member who sees the job but did not submit it is refused (403), anyone else finds no job.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from aifactory.domain.jobs import JobState
from aifactory.domain.permissions import Action, Role
from aifactory.errors import Conflict, InvalidInput, PermissionDenied
from aifactory.executors.local.enter import CannotEnter, Shell
from aifactory.governance import audit
from aifactory.services.jobs import get_job
from aifactory.services.principal import Principal

__all__ = ["Shell", "ShellOpener", "shell_target", "start_in_job"]
MAX_ARGS = 256
MAX_ARG = 32 * 1024


class ShellOpener(Protocol):
    """Starts a command in a running attempt's sandbox (the executor's; None where it cannot)."""

    def __call__(
        self, job_id: int, attempt: int, command: list[str], *, tty: bool, rows: int, cols: int
    ) -> Shell: ...


def shell_target(
    session: Session,
    principal: Principal,
    job_id: int,
    command: list[str],
    *,
    tty: bool,
    now: float,
) -> int:
    """The running attempt to start `command` in, once checked and audited."""
    if (
        not command
        or len(command) > MAX_ARGS
        or any(not a or len(a) > MAX_ARG or "\x00" in a for a in command)
    ):
        raise InvalidInput(f"1 to {MAX_ARGS} arguments, none empty, none with NUL", field="command")
    job = get_job(session, principal, job_id)
    principal.authorize(Action.SESSION_USE, job.project_id, what="job", seen=True)
    if job.user_id != principal.user_id and Role.OWNER not in principal.roles(job.project_id):
        raise PermissionDenied(
            "only who submitted the job, or an owner of its project, may run a command in it",
            field="job_id",
        )
    if JobState(job.state) is not JobState.RUNNING or job.cancel_requested:
        now_is = "being stopped" if job.cancel_requested else job.state.lower()
        raise Conflict(f"job {job_id} is {now_is}: a command runs in it while it runs")
    audit.record(
        session,
        actor=principal.name,
        action="job.exec",
        object=f"job:{job_id}",
        source=principal.source,
        project_id=job.project_id,
        detail={"command": [a[:200] for a in command[:20]], "tty": tty},
        at=now,
    )
    return job.attempts


def start_in_job(
    opener: ShellOpener,
    job_id: int,
    attempt: int,
    command: list[str],
    *,
    tty: bool,
    rows: int,
    cols: int,
) -> Shell:
    """`command` started in the attempt's sandbox; Conflict saying why where it cannot be."""
    try:
        return opener(job_id, attempt, command, tty=tty, rows=rows, cols=cols)
    except CannotEnter as reason:
        raise Conflict(f"job {job_id}: {reason}") from None
