"""The control loop: snapshot → schedule → act, and reconcile with the executor.

One loop runs per facility: it acts only while it holds the `control` lease, and every write
it makes checks the lease epoch in the same transaction, so a loop that lost its lease (paused,
partitioned) cannot overwrite its successor's work. Each step follows load → act → apply:
short read session, executor calls outside any session, short write session.

Intent before action: a job is committed ADMITTED, with its named devices, before the executor
is asked to start it; on restart, ADMITTED jobs the executor never saw are started again. Each
admission is a new attempt (`jobs.attempts`), and the executor is addressed by attempt, so a job
requeued after a preemption runs again while no attempt ever runs twice. Likewise a preemption
is committed (`preempt_requested_at`, with an event) before the executor is asked to stop the
job, and passed on every tick until the executor has seen the attempt exit.

Money follows the same rule (accounting.budget): an admission reserves the job's most from its
project's allocation in the admission's transaction, and the transaction that moves a job off
its attempt also meters and settles the attempt. With `enforce_budgets`, a job no allocation
can pay for is held (HELD, "no budget: …") and released once it can be paid.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.accounting import budget
from aifactory.control.placement import DeviceBook
from aifactory.control.reconcile import Move, Plan, plan_for
from aifactory.control.snapshot import read_snapshot, without_foreign
from aifactory.control.verdicts import VerdictKeeper
from aifactory.domain import interactive
from aifactory.domain.arrays import ID_ENV, INDEX_ENV
from aifactory.domain.jobs import ACTIVE, WAITING, JobState
from aifactory.domain.placement import placement_of, stored_placement
from aifactory.executors.base import Attempt, Executor, Launch, NodeSlice, Observation
from aifactory.governance import admission
from aifactory.scheduler import Decision, Hold, Policy, Preempt, Snapshot, Start, schedule
from aifactory.scheduler.decisions import Cancel, Release
from aifactory.scheduler.verdict import Round, decide, judge
from aifactory.software import layout
from aifactory.store import flags
from aifactory.store.db import Database
from aifactory.store.jobs import (
    jobs_in_states,
    lock_in_order,
    lock_job,
    request_preemption,
    switch_job_state,
)
from aifactory.store.leases import release, try_acquire
from aifactory.store.models import (
    DatasetVersion,
    InteractiveSession,
    Job,
    JobDataset,
    Node,
    Project,
)
from aifactory.store.names import names_of
from aifactory.store.nodes import offer_only, upsert_node
from aifactory.store.sites import known_site

log = logging.getLogger("aifactory.control")
LEASE = "control"
ACTOR = "control"
CHECKPOINT_EVERY_S = 5.0
BUSY_PACE = 2.0  # a tick costing t is followed by at least 2t of rest: the loop takes ≤ 1/3
INVENTORY_EVERY_S = 30.0  # how often nodes are read again (drained, returned, resized)
Clock = Callable[[], float]
Housekeeping = Callable[[float], None]  # given the time; runs while this loop holds the lease
Scheduler = Callable[[Snapshot, Policy, float], list[Decision]]
Timed = Callable[[str, float], None]  # ("tick" | "admission", seconds): where metrics go


class LeaseLost(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ActiveJob:
    id: int
    state: JobState
    cancel_requested: bool
    preempt_reason: str | None  # set once a preemption was asked for
    launch: Launch

    @property
    def attempt(self) -> Attempt:
        return self.launch.attempt

    def unchanged(self, row: Job) -> bool:
        """The row is as this job was read: no move, cancel or preemption came in between."""
        return (
            row.state == self.state.value
            and row.attempts == self.attempt.number
            and row.cancel_requested == self.cancel_requested
            and row.preempt_reason == self.preempt_reason
        )


class ControlLoop:
    def __init__(
        self,
        db: Database,
        executor: Executor,
        policy: Policy,
        clock: Clock,
        *,
        lease_ttl_s: float = 15.0,
        tick_s: float = 0.5,
        min_gap_s: float = 0.05,
        scheduler: Scheduler = schedule,
        enforce_budgets: bool = False,
        housekeeping: Housekeeping | None = None,
        software_dir: Path | None = None,
        timed: Timed | None = None,
    ) -> None:
        self.db = db
        self.timed = timed  # a seam: the composition root's metrics (services.metrics_exposition)
        self.software_dir = software_dir  # where jobs' environments and images lie (software/)
        self.executor = executor
        self.policy = policy
        self.scheduler = scheduler  # a seam: tests hand in decisions a policy would make
        self.enforce_budgets = enforce_budgets
        self.housekeeping = housekeeping  # e.g. erasures and retention (governance.erasure)
        self.clock = clock
        self.lease_ttl_s = lease_ttl_s
        self.tick_s = tick_s
        self.min_gap_s = min_gap_s  # a burst of wakes (submits) costs one tick, not one each
        self._renewed_at = -1.0
        self._checkpointed_at = -1.0
        self._inventoried_at = -1.0
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.epoch: int | None = None
        self._registered = False
        self._wake = threading.Event()
        self._verdicts = VerdictKeeper()

    # ---- running -------------------------------------------------------------------------
    def wake(self) -> None:
        """Ask for a tick now (e.g. after a submit) instead of at the next interval."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Tick until stopped: every `tick_s`, or sooner when woken, but never sooner than
        `BUSY_PACE` times the last tick's CPU time after it: with tens of thousands of jobs waiting
        a round costs seconds of CPU, and the API beside the loop must keep answering."""
        while not stop.is_set():
            began = time.thread_time()  # CPU of this thread: what the API competes with
            try:
                self.tick()
            except Exception:
                log.exception("control loop tick failed; retrying")
            stop.wait(max(self.min_gap_s, BUSY_PACE * (time.thread_time() - began)))
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def tick(self) -> bool:
        """One round; returns False while another loop holds the lease."""
        if not self._hold_lease():
            return False
        began = time.perf_counter()
        if not self._registered:
            self._register_nodes()
            self._settle_orphans()
        elif self.clock() - self._inventoried_at >= INVENTORY_EVERY_S:
            self._refresh_nodes()
        self._sync()
        self._schedule(paused=self._admission_paused())
        if self.housekeeping is not None:
            self.housekeeping(self.clock())
        if self.clock() - self._checkpointed_at >= CHECKPOINT_EVERY_S:
            self.db.checkpoint()
            self._checkpointed_at = self.clock()
        if self.timed is not None:
            self.timed("tick", time.perf_counter() - began)
        return True

    # ---- lease ---------------------------------------------------------------------------
    def _hold_lease(self) -> bool:
        """Renew when a third of the lease has gone by; every write re-checks it anyway."""
        if self.epoch is not None and self.clock() - self._renewed_at < self.lease_ttl_s / 3:
            return True
        with self.db.session() as session:
            epoch = try_acquire(
                session, LEASE, self.holder, self.clock(), self.lease_ttl_s, is_dead=holder_is_dead
            )
        if epoch != self.epoch:
            self._registered = False  # a new term: register and reconcile first
            self._verdicts.forget()
            if epoch is not None:
                log.info("holding the control lease (epoch %s)", epoch)
        self.epoch = epoch
        self._renewed_at = self.clock()
        return epoch is not None

    def release(self) -> None:
        """On a clean stop: hand the lease back so a successor need not wait for it to expire."""
        if self.epoch is None:
            return
        with self.db.session() as session:
            release(session, LEASE, self.holder)
        self.epoch = None

    def _fence(self, session: Session) -> None:
        epoch = try_acquire(session, LEASE, self.holder, self.clock(), self.lease_ttl_s)
        if epoch is None or epoch != self.epoch:
            self.epoch = None
            raise LeaseLost(f"{self.holder} lost the control lease")
        self._renewed_at = self.clock()

    def _refresh_nodes(self) -> None:
        """A cluster's nodes come and go (drained, down, back): an executor that cannot be
        asked now is asked again next time, and scheduling goes on meanwhile."""
        try:
            self._register_nodes()
        except LeaseLost:
            raise
        except Exception:
            log.exception("reading the executor's nodes failed; trying again later")
            self._inventoried_at = self.clock()

    def _register_nodes(self) -> None:
        offers = self.executor.inventory()
        with self.db.session() as session:
            self._fence(session)
            offer_only(session, executor=self.executor.name, node_ids={o.node.id for o in offers})
            for offer in offers:
                known_site(session, offer.node.site, now=self.clock())
                upsert_node(
                    session,
                    offer.node,
                    executor=self.executor.name,
                    gpu_ids=offer.gpu_ids,
                    now=self.clock(),
                )
        self._registered = True
        self._inventoried_at = self.clock()

    def _settle_orphans(self) -> None:
        with self.db.session() as session:
            self._fence(session)
            budget.settle_orphans(session, now=self.clock())

    def _admission_paused(self) -> bool:
        with self.db.read() as session:
            return flags.admission_paused(session)

    # ---- reconcile: what the executor saw → job states -----------------------------------
    def _sync(self) -> None:
        with self.db.read() as session:
            jobs = jobs_in_states(session, sorted(ACTIVE))
            names = names_of(session, Project, {job.project_id for job in jobs})
            data = _dataset_paths(session, [job.id for job in jobs if job.uses_datasets])
            notebooks = _sessions(session, [job.id for job in jobs])
            active = [
                _active(
                    job,
                    names.get(job.project_id),
                    data.get(job.id),
                    self.software_dir,
                    serves=interactive.SOCKET if job.id in notebooks else None,
                )
                for job in jobs
            ]
        if not active:
            return
        seen = self.executor.poll(job.attempt for job in active)
        plans = {
            job.id: plan_for(job.state, job.cancel_requested, seen[job.attempt], job.preempt_reason)
            for job in active
        }
        for job in active:
            self._act(job, plans[job.id])
        self._apply(active, plans, seen)

    def _act(self, job: ActiveJob, plan: Plan) -> None:
        """Stops first: a preemption told before a start keeps the attempt from running."""
        if plan.cancel:
            self.executor.cancel(job.attempt)
        if plan.preempt:
            self.executor.preempt(job.attempt)
        if plan.start:
            log.info("starting job %s (attempt %s)", job.id, job.attempt.number)
            self.executor.start(job.launch)

    def _apply(
        self,
        active: Iterable[ActiveJob],
        plans: dict[int, Plan],
        seen: dict[Attempt, Observation],
    ) -> None:
        changing = [job for job in active if plans[job.id].moves]
        if not changing:
            return
        with self.db.session() as session:
            self._fence(session)
            now = self.clock()
            lock_in_order(session, [job.id for job in changing])
            for job in changing:
                row = lock_job(session, job.id)
                if row is None or not job.unchanged(row):
                    continue  # changed since we looked: the next tick sees it afresh
                self._move(session, row, plans[job.id].moves, seen[job.attempt], now)

    def _move(
        self, session: Session, row: Job, moves: Iterable[Move], seen: Observation, now: float
    ) -> None:
        """Apply the moves; if they take the job off its attempt, settle the attempt with them."""
        started_at, placement = row.started_at, row.placement
        for move in moves:
            switch_job_state(
                session, row, move.target, now=now, actor=ACTOR, reason=move.reason, **move.fields
            )
            started_at = row.started_at or started_at  # a requeue clears it: keep the attempt's
        if JobState(row.state) not in ACTIVE:
            budget.settle(
                session,
                row,
                attempt=row.attempts,
                started_at=seen.started_at or started_at,
                ended_at=seen.ended_at or now,
                observed=dict(seen.usage),
                now=now,
                placement=placement,
            )

    # ---- schedule: pending → admitted ----------------------------------------------------
    def _schedule(self, *, paused: bool) -> None:
        """One round: every waiting job judged in one place (scheduler.verdict.decide); here
        only carried out. While admission is paused the verdicts are still kept, nothing acts."""
        began = time.perf_counter()
        now = self.clock()
        with self.db.read() as session:
            snapshot = read_snapshot(
                session,
                now,
                self.policy.half_life_s,
                holds=True,
                budgets_enforced=self.enforce_budgets,
            )
        waiting = len(snapshot.pending) + len(snapshot.held)
        if waiting and not paused:  # asked outside the read: it may run squeue
            snapshot = without_foreign(snapshot, self.executor.foreign_load())
        keep = self._verdicts.due(now, waiting)
        if not waiting and not keep:
            return
        if paused:  # judged as the facility stands: nothing of this round is carried out
            found = Round([], judge(snapshot, self.policy, now) if keep else None)
        else:
            found = decide(snapshot, self.policy, now, scheduler=self.scheduler, with_verdicts=keep)
        decisions = found.decisions
        with self.db.session() as session:
            self._fence(session)
            lock_in_order(session, [d.job_id for d in decisions])
            self._cancel(session, [d for d in decisions if isinstance(d, Cancel)])
            self._release(session, [d for d in decisions if isinstance(d, Release)])
            stops = self._preempt(session, [d for d in decisions if isinstance(d, Preempt)])
            launches = self._admit(session, [d for d in decisions if isinstance(d, Start | Hold)])
            if found.verdicts is not None:
                self._verdicts.keep(session, found.verdicts, now)
        if self.timed is not None:
            self.timed("admission", time.perf_counter() - began)
        for attempt in stops:
            log.info("preempting job %s (attempt %s)", attempt.job_id, attempt.number)
            self.executor.preempt(attempt)
        for launch in launches:
            log.info("starting job %s (attempt %s)", launch.job_id, launch.attempt.number)
            self.executor.start(launch)

    def _cancel(self, session: Session, decisions: list[Cancel]) -> None:
        """Waiting jobs that can never run end, each saying why."""
        for decision in decisions:
            row = lock_job(session, decision.job_id)
            if row is not None and JobState(row.state) in WAITING:
                switch_job_state(
                    session,
                    row,
                    JobState.CANCELLED,
                    now=self.clock(),
                    actor=ACTOR,
                    reason=decision.reason,
                )

    def _release(self, session: Session, decisions: list[Release]) -> None:
        """Held jobs back in line, each told why it may go now (it may start this round)."""
        for decision in decisions:
            row = lock_job(session, decision.job_id)
            if row is not None and row.state == JobState.HELD.value:
                switch_job_state(
                    session,
                    row,
                    JobState.PENDING,
                    now=self.clock(),
                    actor=ACTOR,
                    reason=decision.reason,
                )

    def _preempt(self, session: Session, decisions: list[Preempt]) -> list[Attempt]:
        """Commit each preemption's intent; the attempts to stop once that is committed."""
        now = self.clock()
        stops: list[Attempt] = []
        for decision in decisions:
            row = lock_job(session, decision.job_id)
            refusal = _why_not_preemptible(row)
            if row is None or refusal is not None:
                log.info("not preempting job %s: %s", decision.job_id, refusal)
                continue
            request_preemption(session, row, decision.reason, now=now, actor=ACTOR)
            stops.append(Attempt(row.id, row.attempts))
        return stops

    def _admit(self, session: Session, decisions: list[Start | Hold]) -> list[Launch]:
        book = _device_book(session)
        now = self.clock()
        purse = budget.Purse(session, now)
        launches: list[Launch] = []
        for decision in decisions:
            row = lock_job(session, decision.job_id)
            if row is None or row.state != JobState.PENDING.value:
                continue
            if isinstance(decision, Hold):
                switch_job_state(
                    session, row, JobState.HELD, now=now, actor=ACTOR, reason=decision.reason
                )
                continue
            if row.uses_datasets and not self._may_read(session, row, now):
                continue
            if not self._reserve(session, purse, row, now):
                continue
            named = book.assign(decision.placement)
            switch_job_state(
                session,
                row,
                JobState.ADMITTED,
                now=now,
                actor=ACTOR,
                reason="admitted",
                placement=stored_placement(named),
                admitted_at=now,
                attempts=row.attempts + 1,
            )
            project = session.get(Project, row.project_id)  # loaded by _reserve already
            data = _dataset_paths(session, [row.id]).get(row.id) if row.uses_datasets else None
            owner = project.name if project else None
            serves = interactive.SOCKET if _sessions(session, [row.id]) else None
            launches.append(_active(row, owner, data, self.software_dir, serves=serves).launch)
            if row.uses_datasets:
                admission.record_access(session, row, now=now)
        return launches

    def _may_read(self, session: Session, row: Job, now: float) -> bool:
        """Checked again as it starts: a grant revoked since the snapshot stops it at once."""
        problem = admission.problems(session, now, [row.id]).get(row.id)
        if problem is None:
            return True
        switch_job_state(session, row, JobState.HELD, now=now, actor=ACTOR, reason=problem)
        return False

    def _reserve(self, session: Session, purse: budget.Purse, row: Job, now: float) -> bool:
        """Reserve the attempt's most; False (and the job held) if it must not start."""
        project = session.get(Project, row.project_id)
        assert project is not None
        refusal = purse.reserve(row, project.name, attempt=row.attempts + 1)
        if refusal is None or not self.enforce_budgets:
            return True
        switch_job_state(session, row, JobState.HELD, now=now, actor=ACTOR, reason=refusal)
        return False


def holder_is_dead(holder: str) -> bool:
    """A holder on this host whose process is gone (killed, crashed) holds nothing."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not psutil.pid_exists(int(pid_text))


def _why_not_preemptible(row: Job | None) -> str | None:
    """Why a Preempt decision cannot apply to this job (None: it can). Never an error: the
    snapshot the policy saw may be a tick old."""
    if row is None:
        return "no such job"
    if JobState(row.state) not in ACTIVE:
        return f"it is {row.state}, not running"
    if not row.preemptible:
        return "it is not preemptible"
    if row.cancel_requested:
        return "it is being cancelled"
    if row.preempt_requested_at is not None:
        return "it is already being preempted"
    return None


def _device_book(session: Session) -> DeviceBook:
    nodes = list(session.scalars(select(Node)))
    active = jobs_in_states(session, sorted(ACTIVE))
    return DeviceBook(
        {n.id: list(n.gpu_ids) for n in nodes},
        {n.id: n.cpus for n in nodes},
        [placement_of(job.placement) for job in active],
    )


def _dataset_paths(session: Session, job_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """The versions each job was granted at submission: the sandbox mounts these, read-only,
    and nothing else of the data root."""
    if not job_ids:
        return {}
    stmt = (
        select(JobDataset.job_id, DatasetVersion.path)
        .join(DatasetVersion, DatasetVersion.id == JobDataset.version_id)
        .where(JobDataset.job_id.in_(job_ids))
        .order_by(JobDataset.job_id, DatasetVersion.path)
    )
    found: dict[int, tuple[str, ...]] = {}
    for job_id, path in session.execute(stmt):
        found[job_id] = (*found.get(job_id, ()), path)
    return found


def _sessions(session: Session, job_ids: list[int]) -> set[int]:
    """Those of the jobs that are interactive sessions: their notebook server's socket is
    reached by the facility (Launch.serves)."""
    if not job_ids:
        return set()
    stmt = select(InteractiveSession.job_id).where(InteractiveSession.job_id.in_(job_ids))
    return set(session.scalars(stmt))


def _software(job: Job, software_dir: Path | None) -> dict[str, str]:
    """Where the job's environment or image lies (software.layout), if it has one."""
    if software_dir is None:
        return {}
    if job.environment_key is not None:
        return {"environment": str(layout.environment_dir(software_dir, job.environment_key))}
    if job.image_digest is not None:
        return {"image": str(layout.image_dir(software_dir, job.image_digest))}
    return {}


def _array_env(job: Job) -> dict[str, str]:
    """A task of an array learns which one it is (domain.arrays)."""
    if job.array_id is None or job.array_index is None:
        return {}
    return {ID_ENV: str(job.array_id), INDEX_ENV: str(job.array_index)}


def _active(
    job: Job,
    project: str | None = None,
    datasets: tuple[str, ...] | None = None,
    software_dir: Path | None = None,
    *,
    serves: str | None = None,
) -> ActiveJob:
    placement = {
        node_id: NodeSlice(list(share.gpu_ids), list(share.cpu_ids), share.memory_mb)
        for node_id, share in placement_of(job.placement).items()
    }
    launch = Launch(
        attempt=Attempt(job.id, job.attempts),
        command=list(job.command),
        env={**job.env, **_array_env(job)},
        working_dir=job.working_dir,
        time_limit_s=job.time_limit_s,
        placement=placement,
        project=project,
        project_id=job.project_id,
        datasets=datasets or (),
        network=job.network,
        inputs=tuple(job.inputs or ()),
        serves=serves,
        **_software(job, software_dir),
    )
    return ActiveJob(job.id, JobState(job.state), job.cancel_requested, job.preempt_reason, launch)
