"""Submitting, listing, showing and cancelling jobs, and reading their logs.

Submission is idempotent per project and client key: the same key returns the job made the
first time, never a second job. A spec that can never fit the facility is refused at once,
naming the field; one that fits waits PENDING for the control loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE, TERMINAL, WAITING, JobSpec, JobState
from aifactory.domain.nodes import why_never_fits
from aifactory.domain.tenancy import ProjectRole
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name, user_by_name
from aifactory.store.jobs import events_of, lock_job, record_submission, switch_job_state
from aifactory.store.models import Job, JobEvent, Project
from aifactory.store.nodes import node_values

LogLocator = Callable[[int], Path]
MAX_LOG_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    created: bool  # False when an earlier submission with the same key is returned


def submit_job(
    session: Session,
    principal: Principal,
    spec: JobSpec,
    *,
    project: str | None,
    idempotency_key: str | None,
    now: float,
) -> Submitted:
    target = _submit_project(session, principal, project)
    principal.require(target.id, ProjectRole.MEMBER)
    if idempotency_key:
        earlier = _by_key(session, target.id, idempotency_key)
        if earlier is not None:
            return Submitted(earlier, created=False)
    unfit = why_never_fits(spec, node_values(session))
    if unfit is not None:
        raise InvalidInput(f"can never run on this facility: {unfit.reason}", field=unfit.field)
    job = _new_job(spec, target.id, principal.user_id, idempotency_key, now)
    try:
        with session.begin_nested():
            record_submission(session, job, actor=principal.name)
    except IntegrityError:  # the same key raced in from another request
        earlier = _by_key(session, target.id, idempotency_key or "")
        if earlier is None:
            raise
        return Submitted(earlier, created=False)
    return Submitted(job, created=True)


def _submit_project(session: Session, principal: Principal, name: str | None) -> Project:
    if name is not None:
        return project_by_name(session, principal, name)
    if principal.default_project_id is None:
        raise InvalidInput("you have no default project: name one with 'project'", field="project")
    project = session.get(Project, principal.default_project_id)
    assert project is not None
    return project


def _by_key(session: Session, project_id: int, key: str) -> Job | None:
    stmt = select(Job).where(Job.project_id == project_id, Job.idempotency_key == key)
    return session.scalars(stmt).first()


def _new_job(spec: JobSpec, project_id: int, user_id: int, key: str | None, now: float) -> Job:
    return Job(
        project_id=project_id,
        user_id=user_id,
        name=spec.name,
        command=list(spec.command),
        env=dict(spec.env),
        working_dir=spec.working_dir,
        gpus_per_node=spec.gpus_per_node,
        nodes=spec.nodes,
        cpus_per_node=spec.cpus_per_node,
        memory_mb_per_node=spec.memory_mb_per_node,
        gpu_model=spec.gpu_model,
        time_limit_s=spec.time_limit_s,
        preemptible=spec.preemptible,
        priority=spec.priority,
        idempotency_key=key,
        state=JobState.PENDING.value,
        cancel_requested=False,
        attempts=0,
        submitted_at=now,
        updated_at=now,
    )


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    project: str | None = None,
    state: JobState | None = None,
    user: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Job]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if project is not None:
        stmt = stmt.where(Job.project_id == project_by_name(session, principal, project).id)
    elif not principal.facility_role.sees_all_projects:
        stmt = stmt.where(Job.project_id.in_(principal.memberships))
    if state is not None:
        stmt = stmt.where(Job.state == state.value)
    if user is not None:
        stmt = stmt.where(Job.user_id == user_by_name(session, user, field="owner").id)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    return list(session.scalars(stmt))


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or principal.role_in(job.project_id) is None:
        raise NotFound(f"job {job_id} not found", field="job_id")
    return job


def job_events(session: Session, principal: Principal, job_id: int) -> list[JobEvent]:
    get_job(session, principal, job_id)
    return events_of(session, job_id)


def cancel_job(session: Session, principal: Principal, job_id: int, *, now: float) -> Job:
    job = get_job(session, principal, job_id)
    principal.require(job.project_id, ProjectRole.MEMBER, what="job", operators_too=True)
    job = lock_job(session, job_id) or job
    state = JobState(job.state)
    if state in TERMINAL:
        raise Conflict(f"job {job_id} already ended ({state.value})", field="job_id")
    if state in WAITING or state is JobState.PREEMPTED:
        if state is JobState.PREEMPTED:
            switch_job_state(
                session,
                job,
                JobState.PENDING,
                now=now,
                actor=principal.name,
                reason="requeued to cancel",
            )
        switch_job_state(
            session,
            job,
            JobState.CANCELLED,
            now=now,
            actor=principal.name,
            reason=f"cancelled by {principal.name}",
        )
    elif state in ACTIVE:
        job.cancel_requested = True  # the control loop stops it and records CANCELLED
        job.updated_at = now
    return job


@dataclass(frozen=True, slots=True)
class LogChunk:
    text: str
    offset: int  # where the next read should start
    size: int
    complete: bool  # the job has ended and every byte has been read


def read_logs(
    session: Session,
    principal: Principal,
    job_id: int,
    *,
    locate: LogLocator,
    offset: int = 0,
    tail_lines: int | None = None,
) -> LogChunk:
    job = get_job(session, principal, job_id)
    ended = JobState(job.state) in TERMINAL
    path = locate(job_id)
    if not path.exists():
        return LogChunk("", 0, 0, ended)
    size = path.stat().st_size
    if tail_lines is not None:
        return _tail(path, size, tail_lines, ended)
    if offset < 0 or offset > size:
        raise InvalidInput(f"must be between 0 and the log size ({size})", field="offset")
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(MAX_LOG_CHUNK)
    end = offset + len(data)
    return LogChunk(data.decode("utf-8", errors="replace"), end, size, ended and end == size)


def _tail(path: Path, size: int, lines: int, ended: bool) -> LogChunk:
    if lines < 0:
        raise InvalidInput("must be 0 or more", field="tail")
    start = max(0, size - MAX_LOG_CHUNK)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    kept = data.splitlines(keepends=True)[-lines:] if lines else []
    return LogChunk(b"".join(kept).decode("utf-8", errors="replace"), size, size, ended)
