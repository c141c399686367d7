"""Submitting, listing, showing, reprioritising and cancelling jobs, and reading their logs.

Submission is idempotent per project and client key: the same key returns the job made the
first time, never a second job. A spec that can never fit the facility is refused at once,
naming the field; one that fits waits PENDING for the control loop. A job's priority weighs in
its place in the queue: tenants may only lower theirs (0 or below), since a priority above 0
would let a project go ahead of those fair share serves first; raising one, or changing it
while the job waits, is `job.prioritise` (operators, admins).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.accounting.rules import rules_for
from aifactory.control.snapshot import dependency_states
from aifactory.domain.datasets import EU_MEMBER_STATES
from aifactory.domain.dependencies import After, Dependency, DependencyState, never_met
from aifactory.domain.jobs import ACTIVE, TERMINAL, WAITING, JobSpec, JobState, Network
from aifactory.domain.nodes import Node, why_never_fits
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import JobRules
from aifactory.errors import AifactoryError, Conflict, InvalidInput, NotFound
from aifactory.governance import admission, audit
from aifactory.governance.closure import is_closed
from aifactory.services import environments, images
from aifactory.services.job_view import JobView, view_of, views_of
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name, user_by_name
from aifactory.store import flags
from aifactory.store.jobs import NewJob, events_of, insert_jobs, lock_job, switch_job_state
from aifactory.store.models import Job, JobEvent, Project, User
from aifactory.store.models import Node as NodeRow
from aifactory.store.nodes import node_values
from aifactory.store.sites import site_countries

LogLocator = Callable[[int], Path]
MAX_LOG_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Submission:
    principal: Principal
    spec: JobSpec
    project: str | None
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job | NewJob
    project: str
    user: str
    created: bool  # False when an earlier submission with the same key is returned


Outcome = Submitted | AifactoryError


def submit_job(
    session: Session,
    principal: Principal,
    spec: JobSpec,
    *,
    project: str | None,
    idempotency_key: str | None,
    now: float,
) -> Submitted:
    (outcome,) = submit_jobs(
        session, [Submission(principal, spec, project, idempotency_key)], now=now
    )
    if isinstance(outcome, AifactoryError):
        raise outcome
    return outcome


def submit_jobs(session: Session, batch: Sequence[Submission], *, now: float) -> list[Outcome]:
    """Many submissions in one transaction (group commit); each stands or falls on its own.

    Checks run per submission; the new jobs and their first events are then written with two
    bulk inserts, and their audit events with one more. A key already used (in the store, or
    earlier in the batch) returns that job.
    """
    nodes = node_values(session, schedulable_only=False)  # a drained node comes back
    open_network = flags.open_network(session)
    projects: dict[tuple[int, str | None], Project] = {}
    rules: dict[int, JobRules] = {}
    outcomes: dict[int, Outcome] = {}
    fresh: dict[int, NewJob] = {}
    first_with_key: dict[tuple[int, str], int] = {}
    repeats: dict[int, int] = {}  # index → the earlier index in this batch with its key
    data: dict[int, list[admission.Declared]] = {}
    for index, submission in enumerate(batch):
        try:
            target = _checked_target(session, submission, nodes, projects)
            if target.id not in rules:
                _refuse_if_closed(session, target)
                rules[target.id] = rules_for(session, target.id, now)
            spec = _as_programme_says(submission.spec, rules[target.id])
            _check_network(spec, open_network=open_network)
            _check_inputs(session, spec, target)
            _check_after(session, submission.principal, spec)
            software = _software(session, spec, target.id)
            declared = _declared(session, spec, nodes, target.id)
        except AifactoryError as exc:
            outcomes[index] = exc
            continue
        key = submission.idempotency_key
        if key and (target.id, key) in first_with_key:
            repeats[index] = first_with_key[(target.id, key)]
            continue
        earlier = _by_key(session, target.id, key) if key else None
        if earlier is not None:
            outcomes[index] = _earlier(session, earlier, target)
            continue
        if key:
            first_with_key[(target.id, key)] = index
        fresh[index] = _new_job(spec, target.id, submission.principal.user_id, key, now)
        fresh[index].environment_key, fresh[index].image_digest = software
        if declared:
            _with_data(fresh[index], declared)
            data[index] = declared
    outcomes.update(_insert(session, batch, fresh, projects))
    _insert_array_tasks(session, batch, outcomes, fresh)
    for index, declared in data.items():
        outcome = outcomes.get(index)
        if isinstance(outcome, Submitted) and outcome.created:
            admission.record(session, fresh[index].id, declared)
    audit.append(session, _submit_events(batch, outcomes, fresh), at=now)
    for index, first in repeats.items():
        settled = outcomes[first]
        outcomes[index] = (
            replace(settled, created=False) if isinstance(settled, Submitted) else settled
        )
    return [outcomes[i] for i in range(len(batch))]


def _insert_array_tasks(
    session: Session,
    batch: Sequence[Submission],
    outcomes: dict[int, Outcome],
    fresh: dict[int, NewJob],
) -> None:
    """An array's first task was inserted with the batch; its id is the array's id. Its other
    tasks follow, each a job of its own with its index."""
    for index, first in fresh.items():
        outcome, spec = outcomes.get(index), batch[index].spec
        if len(spec.array_indices) < 1 or not (isinstance(outcome, Submitted) and outcome.created):
            continue
        session.execute(update(Job).where(Job.id == first.id).values(array_id=first.id))
        first.array_id = first.id
        rest = [
            replace(first, id=0, array_index=i, idempotency_key=None)
            for i in spec.array_indices[1:]
        ]
        if rest:
            insert_jobs(session, rest, [batch[index].principal.name] * len(rest))


def _submit_events(
    batch: Sequence[Submission], outcomes: dict[int, Outcome], fresh: dict[int, NewJob]
) -> list[audit.NewEvent]:
    """One `job.submit` event per job this batch made, in submission order."""
    made = [(i, o) for i, o in outcomes.items() if i in fresh and isinstance(o, Submitted)]
    return [
        audit.NewEvent(
            actor=batch[i].principal.name,
            action="job.submit",
            object=f"job:{outcome.job.id}",
            source=batch[i].principal.source,
            project_id=outcome.job.project_id,
        )
        for i, outcome in sorted(made)
        if outcome.created
    ]


def _checked_target(
    session: Session,
    submission: Submission,
    nodes: list[Node],
    projects: dict[tuple[int, str | None], Project],
) -> Project:
    """The project to submit into, after the same checks an unbatched submit makes (cached
    per user and project name within a batch)."""
    principal = submission.principal
    target = projects.get((principal.user_id, submission.project))
    if target is None:
        target = _submit_project(session, principal, submission.project)
        projects[(principal.user_id, submission.project)] = target
    principal.authorize(Action.JOB_SUBMIT, target.id)
    if submission.spec.priority > 0:
        principal.authorize(Action.JOB_PRIORITISE, target.id, field="priority")
    unfit = why_never_fits(submission.spec, nodes)
    if unfit is not None:
        raise InvalidInput(f"can never run on this facility: {unfit.reason}", field=unfit.field)
    return target


def _check_network(spec: JobSpec, *, open_network: bool) -> None:
    """The sovereign default is no network; `open` only where the operator allows it, and a
    job on several nodes needs it to reach its other nodes."""
    if spec.network is Network.OPEN and not open_network:
        raise InvalidInput(
            "this facility gives jobs no network (network 'none'); its operators can allow "
            "'open' with aifactory up --allow-open-network",
            field="network",
        )
    if spec.nodes > 1 and spec.network is Network.NONE:
        raise InvalidInput(
            "a job on several nodes needs network 'open' to reach its other nodes",
            field="network",
        )


def _check_inputs(session: Session, spec: JobSpec, project: Project) -> None:
    """Jobs it reads must be its own project's: another project's is answered as one that does
    not exist."""
    if not spec.inputs:
        return
    stmt = select(Job.id).where(Job.id.in_(spec.inputs), Job.project_id == project.id)
    known = set(session.scalars(stmt))
    for job_id in spec.inputs:
        if job_id not in known:
            raise InvalidInput(f"no job {job_id} in project {project.name}", field="inputs")


def _check_after(session: Session, principal: Principal, spec: JobSpec) -> None:
    """Jobs it waits for must be jobs its submitter may see (any other is answered as one that
    does not exist), and not already ended the way that can never let it run."""
    if not spec.after:
        return
    wanted = sorted({job_id for _, job_id in spec.after})
    rows = session.execute(select(Job.id, Job.project_id).where(Job.id.in_(wanted)))
    seen = [i for i, project in rows if principal.may(Action.JOB_READ, project)]
    states = dependency_states(session, seen)  # an array's id: the whole array

    for after, job_id in spec.after:
        field = "after_" + after.replace("-", "_")
        if job_id not in states:
            raise InvalidInput(f"no job {job_id}", field=field)
        found = DependencyState(Dependency(After(after), job_id), states[job_id])
        if (never := never_met([found])) is not None:
            raise InvalidInput(never, field=field)


def _software(session: Session, spec: JobSpec, project_id: int) -> tuple[str | None, str | None]:
    """(environment key, image digest) the job runs in, settled now: a name given to other
    software later changes nothing for it."""
    if spec.environment is not None and spec.image is not None:
        raise InvalidInput("give at most one of environment and image", field="image")
    if spec.environment is not None:
        return (environments.resolve_for_job(session, project_id, spec.environment), None)
    if spec.image is not None:
        return (None, images.resolve_for_job(session, project_id, spec.image)[1])
    return (None, None)


def _as_programme_says(spec: JobSpec, rules: JobRules) -> JobSpec:
    """Refuse a job larger than the programme admits; fill in its preemptible default."""
    too_large = rules.too_large(spec.total_gpus)
    if too_large is not None:
        raise InvalidInput(too_large, field="gpus")
    if spec.preemptible is None:
        return replace(spec, preemptible=rules.preemptible_default)
    return spec


def _insert(
    session: Session,
    batch: Sequence[Submission],
    fresh: dict[int, NewJob],
    projects: dict[tuple[int, str | None], Project],
) -> dict[int, Outcome]:
    """Bulk insert. Only idempotency keys can collide (with a writer in another process); if
    one did, go one by one and answer that key with the job the other writer made."""
    names = {p.id: p.name for p in projects.values()}
    jobs, actors = list(fresh.values()), [batch[i].principal.name for i in fresh]
    if not jobs:
        return {}
    if any(job.idempotency_key for job in jobs):
        try:
            with session.begin_nested():
                insert_jobs(session, jobs, actors)
        except IntegrityError:
            return {i: _insert_one(session, batch[i], job, names) for i, job in fresh.items()}
    else:
        insert_jobs(session, jobs, actors)  # nothing unique to collide on: no savepoint
    return {
        i: Submitted(job, names[job.project_id], batch[i].principal.name, created=True)
        for i, job in fresh.items()
    }


def _insert_one(
    session: Session, submission: Submission, job: NewJob, names: dict[int, str]
) -> Outcome:
    try:
        with session.begin_nested():
            insert_jobs(session, [job], [submission.principal.name])
    except IntegrityError:
        earlier = _by_key(session, job.project_id, job.idempotency_key or "")
        if earlier is None:
            raise
        project = session.get(Project, job.project_id)
        assert project is not None
        return _earlier(session, earlier, project)
    return Submitted(job, names[job.project_id], submission.principal.name, created=True)


def _earlier(session: Session, job: Job, project: Project) -> Submitted:
    user = session.get(User, job.user_id)
    return Submitted(job, project.name, user.name if user else "?", created=False)


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


def _refuse_if_closed(session: Session, project: Project) -> None:
    if is_closed(session, project.id):
        raise Conflict(f"project {project.name} is closed: it takes no new jobs", field="project")


def _declared(
    session: Session, spec: JobSpec, nodes: list[Node], project_id: int
) -> list[admission.Declared]:
    """The job's datasets, resolved among those its project may name (whoever submits);
    refused if no node where they may be processed fits it."""
    if not spec.datasets:
        return []
    declared = admission.resolve(session, spec.datasets, project_id=project_id)
    countries = admission.job_countries(declared)
    if countries is not None:
        where = site_countries(session)
        lawful = [n for n in nodes if where.get(n.site) in countries]
        unfit = why_never_fits(spec, lawful) if lawful else None
        if not lawful or unfit is not None:
            held_to = "the EU" if set(countries) == EU_MEMBER_STATES else ", ".join(countries)
            why = f": {unfit.reason}" if unfit is not None else ""
            raise InvalidInput(
                f"its datasets may be processed only in {held_to}, and no node there can "
                f"run it{why}",
                field="datasets",
            )
    return declared


def _with_data(job: NewJob, declared: list[admission.Declared]) -> None:
    job.env = {**job.env, **admission.job_environment(declared)}
    job.uses_datasets = True
    job.countries = admission.job_countries(declared)


def _new_job(spec: JobSpec, project_id: int, user_id: int, key: str | None, now: float) -> NewJob:
    return NewJob(
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
        preemptible=bool(spec.preemptible),
        priority=spec.priority,
        network=spec.network.value,
        inputs=list(spec.inputs) or None,
        after=[{"after": after, "job": job_id} for after, job_id in spec.after] or None,
        array_index=spec.array_indices[0] if spec.array_indices else None,
        array_throttle=spec.array_throttle,
        environment=spec.environment,
        image=spec.image,
        notify=spec.notify,
        one_block=spec.one_block,
        idempotency_key=key,
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
    name_contains: str | None = None,
    array_id: int | None = None,
) -> list[JobView]:
    """Newest first, `limit` at most; page on with `before_id` (the last id seen), so a page
    costs the same on the thousandth page as on the first."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if project is not None:
        found = project_by_name(session, principal, project, action=Action.JOB_READ)
        stmt = stmt.where(Job.project_id == found.id)
    elif (projects := principal.projects_for(Action.JOB_READ)) is not None:
        stmt = stmt.where(Job.project_id.in_(projects))
    if state is not None:
        stmt = stmt.where(Job.state == state.value)
    if user is not None:
        stmt = stmt.where(Job.user_id == user_by_name(session, user, field="owner").id)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    if name_contains:
        stmt = stmt.where(Job.name.icontains(name_contains, autoescape=True))
    if array_id is not None:
        stmt = stmt.where(Job.array_id == array_id)
    return views_of(session, session.scalars(stmt))


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or not principal.may(Action.JOB_READ, job.project_id):
        raise NotFound(f"job {job_id} not found", field="job_id")
    return job


def facility_has_gpus(session: Session) -> bool:
    """Whether any node has a GPU (a form for a facility without one asks for none)."""
    return bool(session.scalar(select(func.max(NodeRow.gpus))))


def show_job(session: Session, principal: Principal, job_id: int) -> JobView:
    return view_of(session, get_job(session, principal, job_id))


DataUse = admission.DataUse  # what `job_datasets` answers, named for the faces


def job_datasets(session: Session, job: JobView, *, now: float) -> list[DataUse]:
    """The datasets a (visible) job declared, and where its project's right to read each
    stands now."""
    return admission.data_uses(session, job.id, job.project_id, now)


def job_events(session: Session, principal: Principal, job_id: int) -> list[JobEvent]:
    get_job(session, principal, job_id)
    return events_of(session, job_id)


def cancel_job(session: Session, principal: Principal, job_id: int, *, now: float) -> JobView:
    job = get_job(session, principal, job_id)
    principal.authorize(Action.JOB_CANCEL, job.project_id, what="job", seen=True)
    job = lock_job(session, job_id) or job
    state = JobState(job.state)
    if state in TERMINAL:
        raise Conflict(f"job {job_id} already ended ({state.value})", field="job_id")
    withdraw(session, job, actor=principal.name, now=now)
    audit.record(
        session,
        actor=principal.name,
        action="job.cancel",
        object=f"job:{job_id}",
        at=now,
        source=principal.source,
        project_id=job.project_id,
        detail={"state": state.value},
    )
    return view_of(session, job)


def withdraw(session: Session, job: Job, *, actor: str, now: float) -> None:
    """Cancel a (locked) job that has not ended: a waiting or preempted one ends CANCELLED now;
    an active one is marked, and the control loop stops it and records CANCELLED. Shared by
    one cancel and many (services.queue_control), so both end a job the same way."""
    state = JobState(job.state)
    if state in WAITING or state is JobState.PREEMPTED:
        if state is JobState.PREEMPTED:
            switch_job_state(
                session, job, JobState.PENDING, now=now, actor=actor, reason="requeued to cancel"
            )
        switch_job_state(
            session, job, JobState.CANCELLED, now=now, actor=actor, reason=f"cancelled by {actor}"
        )
    elif state in ACTIVE:
        job.cancel_requested = True
        job.updated_at = now


def set_priority(
    session: Session, principal: Principal, job_id: int, *, priority: int, now: float
) -> JobView:
    """Move a waiting (PENDING or HELD) job up or down the queue: tenants cannot raise their
    own jobs, so an operator does it for them. Priority orders only the queue, so a job past
    it is a conflict, not a no-op."""
    principal.refuse_early(Action.JOB_PRIORITISE)
    job = get_job(session, principal, job_id)
    principal.authorize(Action.JOB_PRIORITISE, job.project_id, what="job", seen=True)
    job = lock_job(session, job_id) or job
    state = JobState(job.state)
    if state not in WAITING:
        raise Conflict(
            f"job {job_id} is {state.value}: only a waiting job's priority can change",
            field="job_id",
        )
    before, job.priority, job.updated_at = job.priority, priority, now
    audit.record(
        session,
        actor=principal.name,
        action="job.prioritise",
        object=f"job:{job_id}",
        at=now,
        source=principal.source,
        project_id=job.project_id,
        detail={"from": before, "to": priority},
    )
    return view_of(session, job)


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
    handle = _open_log(locate(job_id))
    if handle is None:
        return LogChunk("", 0, 0, ended)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if tail_lines is not None:
            return _tail(handle, size, tail_lines, ended)
        if offset < 0 or offset > size:
            raise InvalidInput(f"must be between 0 and the log size ({size})", field="offset")
        handle.seek(offset)
        data = handle.read(MAX_LOG_CHUNK)
    end = offset + len(data)
    return LogChunk(data.decode("utf-8", errors="replace"), end, size, ended and end == size)


def _open_log(path: Path) -> BinaryIO | None:
    """The log if it is a plain file: never a link (followed by the facility, it could show
    a tenant what the link points at) nor a pipe (which would hang the reader)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    handle = open(fd, "rb")  # noqa: SIM115 - the caller closes it
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        return None
    return handle


def _tail(handle: BinaryIO, size: int, lines: int, ended: bool) -> LogChunk:
    if lines < 0:
        raise InvalidInput("must be 0 or more", field="tail")
    start = max(0, size - MAX_LOG_CHUNK)
    handle.seek(start)
    data = handle.read(size - start)
    kept = data.splitlines(keepends=True)[-lines:] if lines else []
    return LogChunk(b"".join(kept).decode("utf-8", errors="replace"), size, size, ended)
