"""What the control-loop tests share: submitting and reading jobs, and a scheduler that
preempts when told to."""

from __future__ import annotations

from collections.abc import Sequence

from aifactory.domain.jobs import JobSpec
from aifactory.scheduler import Decision, Policy, Preempt, Snapshot, schedule
from aifactory.services.auth import principal_of
from aifactory.services.jobs import cancel_job, submit_job
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.jobs import events_of
from aifactory.store.models import Job


def submit(
    db: Database,
    now: float,
    gpus: int = 1,
    name: str = "job",
    *,
    preemptible: bool = False,
    command: Sequence[str] = ("true",),
) -> int:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        spec = JobSpec(
            name=name, command=tuple(command), gpus_per_node=gpus, preemptible=preemptible
        )
        return submit_job(session, admin, spec, project=None, idempotency_key=None, now=now).job.id


def cancel(db: Database, job_id: int, now: float) -> None:
    with db.session() as session:
        admin = principal_of(session, user_by_name(session, "admin"))
        cancel_job(session, admin, job_id, now=now)


def job(db: Database, job_id: int) -> Job:
    with db.read() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def events(db: Database, job_id: int) -> list[tuple[str | None, str, str | None]]:
    with db.read() as session:
        return [(e.from_state, e.to_state, e.reason) for e in events_of(session, job_id)]


class PreemptingScheduler:
    """The real scheduler, preceded by the Preempt decisions a test queues (each given once):
    stands in for a policy that preempts. Keeps the snapshots it was shown."""

    def __init__(self) -> None:
        self.queued: list[Preempt] = []
        self.snapshots: list[Snapshot] = []

    def __call__(self, snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
        self.snapshots.append(snapshot)
        queued, self.queued = self.queued, []
        return [*queued, *schedule(snapshot, policy, now)]
