"""Budget enforcement: a job's most (GPUs × time limit) is reserved from an allocation when it
is admitted, and settled to its real use when the attempt ends; the rest goes back. All in the
ledger's GPU-milliseconds (domain.ledger), so a settlement takes exactly what was metered.

Invariants: reservation, admission and the job's event are one transaction, and so are
settlement and the job's leaving its attempt; so a crash anywhere leaves either both or
neither, and the ledger's unique keys make a replay a no-op. A job its project cannot pay for
is HELD with a reason starting `HOLD_PREFIX`, and goes back to PENDING once it can be paid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from aifactory.accounting import ledger
from aifactory.accounting.metering import Metered, meter
from aifactory.domain import notices
from aifactory.domain.jobs import ACTIVE, JobState
from aifactory.domain.ledger import Balance, EntryKind, entry_key
from aifactory.domain.money import cost_cents, hours_of_ms, ms_of_seconds, share_cents
from aifactory.domain.placement import Placement, gpus_of, placement_of
from aifactory.domain.programmes import Funds, Tariff, Window, payer, thresholds_crossed
from aifactory.store import outbox
from aifactory.store.models import (
    Allocation,
    AllocationAlert,
    Job,
    LedgerEntry,
    Node,
    Programme,
    Project,
    UsageRecord,
)

log = logging.getLogger("aifactory.accounting")
HOLD_PREFIX = "no budget: "
NOTHING_POSTED = Balance(awarded_ms=0, adjusted_ms=0, settled_ms=0, reserved_ms=0)


@dataclass(frozen=True, slots=True)
class Need:
    """What a waiting job may cost: its most GPU-milliseconds."""

    job_id: int
    project: str
    gpus: int
    time_limit_s: float
    gpu_model: str | None = None

    @property
    def gpu_ms(self) -> int:
        return self.gpus * ms_of_seconds(self.time_limit_s)


def need_of(job: Job, project: str) -> Need:
    return Need(job.id, project, job.gpus_per_node * job.nodes, job.time_limit_s, job.gpu_model)


def wallets(session: Session, projects: Iterable[str] | None = None) -> dict[str, list[Funds]]:
    """Every allocation of the given projects (all if None) with its balance, by project name."""
    stmt = select(Allocation, Project.name).join(Project, Project.id == Allocation.project_id)
    if projects is not None:
        stmt = stmt.where(Project.name.in_(list(projects)))
    rows = list(session.execute(stmt.order_by(Allocation.id)))
    balances = ledger.balances(session, [a.id for a, _ in rows])
    found: dict[str, list[Funds]] = {}
    for allocation, project in rows:
        balance = balances.get(allocation.id, NOTHING_POSTED)
        found.setdefault(project, []).append(_funds(allocation, project, balance))
    return found


def _funds(allocation: Allocation, project: str, balance: Balance) -> Funds:
    window = Window(allocation.valid_from, allocation.valid_to)
    return Funds(
        allocation.id,
        allocation.name,
        project,
        window,
        balance.left_ms,
        allocation.gpu_model,
        balance.granted_ms,
    )


def unpayable(needs: Iterable[Need], funds: dict[str, list[Funds]], now: float) -> dict[int, str]:
    """The jobs no allocation of theirs could pay for now, each with the reason. Pure."""
    reasons: dict[int, str] = {}
    for need in needs:
        if need.gpus == 0:
            continue  # CPU-only work is metered and billed, but not held for GPU-hours
        choice = payer(funds.get(need.project, []), need.gpu_ms, need.gpu_model, now)
        if isinstance(choice, str):
            reasons[need.job_id] = HOLD_PREFIX + choice
    return reasons


class Purse:
    """Reservations for one round of admissions, in one transaction: each project's funds are
    read from the ledger once and kept current as jobs reserve, so admitting hundreds of jobs
    costs one balance query per project, not several per job."""

    def __init__(self, session: Session, now: float) -> None:
        self.session = session
        self.now = now
        self._funds: dict[str, list[Funds]] = {}

    def reserve(self, job: Job, project: str, *, attempt: int) -> str | None:
        """Reserve the job's most from the allocation that pays; the reason if none can."""
        need = need_of(job, project)
        funds = self._funds_of(project)
        choice = payer(funds, need.gpu_ms, job.gpu_model, self.now)
        if isinstance(choice, str):
            return None if need.gpus == 0 else HOLD_PREFIX + choice
        # The attempt number is taken in this same transaction: its key cannot exist yet.
        ledger.append(
            self.session,
            allocation_id=choice.allocation_id,
            kind=EntryKind.RESERVE,
            gpu_ms=-need.gpu_ms,
            key=entry_key(EntryKind.RESERVE, job.id, attempt),
            at=self.now,
            actor="control",
            reason=f"job {job.id} attempt {attempt}: up to {need.gpus} GPUs × {job.time_limit_s} s",
            job_id=job.id,
            attempt=attempt,
        )
        after = replace(choice, balance_gpu_ms=choice.balance_gpu_ms - need.gpu_ms)
        funds[funds.index(choice)] = after
        if _crosses(choice, after):
            raise_alerts(self.session, choice.allocation_id, now=self.now)
        return None

    def _funds_of(self, project: str) -> list[Funds]:
        if project not in self._funds:
            self._funds[project] = wallets(self.session, [project]).get(project, [])
        return self._funds[project]


def _crosses(before: Funds, after: Funds) -> bool:
    """Whether a reservation took use past an alert threshold (so alerts must be checked)."""
    granted = before.granted_gpu_ms
    used_before, used_after = granted - before.balance_gpu_ms, granted - after.balance_gpu_ms
    return thresholds_crossed(granted, used_after) != thresholds_crossed(granted, used_before)


def settle(
    session: Session,
    job: Job,
    *,
    attempt: int,
    started_at: float | None,
    ended_at: float,
    observed: dict[str, float],
    now: float,
    placement: dict[str, Any] | None = None,
) -> UsageRecord | None:
    """Meter the ended attempt, charge it to the allocation that reserved for it (if any) and
    release the reservation. Idempotent: an attempt already settled is left alone.
    `placement`: the attempt's, when the job row no longer shows it (requeued)."""
    if _usage_of(session, job.id, attempt) is not None:
        return None
    reservation = ledger.entry_by_key(session, entry_key(EntryKind.RESERVE, job.id, attempt))
    allocation = session.get(Allocation, reservation.allocation_id) if reservation else None
    programme = session.get(Programme, allocation.programme_id) if allocation else None
    shares = placement_of(placement if placement is not None else job.placement)
    gpu_model = _model_of(session, shares) or job.gpu_model
    metered = meter(
        gpus=gpus_of(shares),
        cpus=sum(share.cpus for share in shares.values()),
        gpu_model=gpu_model,
        started_at=started_at,
        ended_at=ended_at,
        observed=observed,
        memory_mb=sum(share.memory_mb for share in shares.values()),
    )
    record = _record(job, attempt, allocation, gpu_model, metered, programme)
    record.booked_at = now
    session.add(record)
    if reservation is not None and allocation is not None:
        _post_settlement(session, reservation, record, now)
    return record


def _record(
    job: Job,
    attempt: int,
    allocation: Allocation | None,
    gpu_model: str | None,
    metered: Metered,
    programme: Programme | None,
) -> UsageRecord:
    """The record of what the attempt used, with the terms it settles under; its cents are
    its own cost to the cent, for showing it alone (bills price the exact milliseconds).
    An endpoint's replica is billed as any job: the token counts its engine reports are the
    project's own code's word, so they are never the only basis of a bill."""
    tariff = tariff_of(programme) if programme else Tariff()
    gpu_price, cpu_price = tariff.per_gpu_hour(gpu_model), tariff.cpu_hour
    subsidy_pct = programme.subsidy_pct if programme else 0
    gpu_cents = cost_cents(metered.gpu_ms, gpu_price)
    cpu_cents = cost_cents(metered.cpu_ms, cpu_price)
    return UsageRecord(
        job_id=job.id,
        attempt=attempt,
        project_id=job.project_id,
        allocation_id=allocation.id if allocation else None,
        gpu_model=gpu_model,
        gpus=metered.gpus,
        cpus=metered.cpus,
        started_at=metered.started_at,
        ended_at=metered.ended_at,
        gpu_ms=metered.gpu_ms,
        cpu_ms=metered.cpu_ms,
        energy_j=metered.energy_j,
        energy_measured=metered.energy_measured,
        memory_mb=metered.memory_mb,
        cpu_time_s=metered.measured.cpu_time_s,
        peak_rss_mb=metered.measured.peak_rss_mb,
        gpu_utilisation_pct=metered.measured.gpu_utilisation_pct,
        peak_gpu_memory_mb=metered.measured.peak_gpu_memory_mb,
        gpu_price=str(gpu_price),
        cpu_price=str(cpu_price),
        subsidy_pct=subsidy_pct,
        gpu_cents=gpu_cents,
        cpu_cents=cpu_cents,
        subsidy_cents=share_cents(gpu_cents + cpu_cents, subsidy_pct),
    )


def _post_settlement(
    session: Session, reservation: LedgerEntry, record: UsageRecord, now: float
) -> None:
    """The attempt had no usage record until now, so its release and settlement keys are new.
    Settling never adds use (release R, charge U ≤ R) unless the attempt overran its
    reservation: only then can an alert threshold newly be crossed."""
    job_id, attempt = record.job_id, record.attempt
    common = {"allocation_id": reservation.allocation_id, "at": now, "actor": "control"}
    ledger.append(
        session,
        kind=EntryKind.RELEASE,
        gpu_ms=-reservation.gpu_ms,
        key=entry_key(EntryKind.RELEASE, job_id, attempt),
        reason=f"job {job_id} attempt {attempt} ended: reservation released",
        job_id=job_id,
        attempt=attempt,
        **common,  # type: ignore[arg-type]
    )
    ledger.append(
        session,
        kind=EntryKind.SETTLE,
        gpu_ms=-record.gpu_ms,
        key=entry_key(EntryKind.SETTLE, job_id, attempt),
        reason=f"job {job_id} attempt {attempt} used {record.gpu_ms} GPU-ms",
        job_id=job_id,
        attempt=attempt,
        cost_cents=record.gpu_cents + record.cpu_cents,
        subsidy_cents=record.subsidy_cents,
        **common,  # type: ignore[arg-type]
    )
    if record.gpu_ms > -reservation.gpu_ms:
        raise_alerts(session, reservation.allocation_id, now=now)


def settle_orphans(session: Session, *, now: float) -> int:
    """Settle reservations whose attempt is no longer running but was never settled — none
    should exist, since settlement shares the job's transaction; this is the safety net a
    restart runs, and it charges what the job row still shows of the attempt."""
    settled = 0
    for job_id, attempt in _open_reservations(session):
        job = session.get(Job, job_id)
        if job is None or (job.attempts == attempt and JobState(job.state) in ACTIVE):
            continue
        same = job.attempts == attempt
        ended = job.ended_at if same and job.ended_at is not None else now
        started = job.started_at if same else None
        log.error("settling job %s attempt %s, missed at its end", job_id, attempt)
        settle(
            session, job, attempt=attempt, started_at=started, ended_at=ended, observed={}, now=now
        )
        settled += 1
    return settled


def _open_reservations(session: Session) -> list[tuple[int, int]]:
    """(job, attempt) of every reservation without its release, found in SQL (an anti-join on
    the indexed job id), so a restart does not read the whole ledger."""
    release = aliased(LedgerEntry)
    released = (
        select(release.id)
        .where(
            release.job_id == LedgerEntry.job_id,
            release.attempt == LedgerEntry.attempt,
            release.kind == EntryKind.RELEASE.value,
        )
        .exists()
    )
    stmt = (
        select(LedgerEntry.job_id, LedgerEntry.attempt)
        .where(LedgerEntry.kind == EntryKind.RESERVE.value, ~released)
        .order_by(LedgerEntry.job_id, LedgerEntry.attempt)
    )
    return [(j, a) for j, a in session.execute(stmt) if j is not None and a is not None]


def raise_alerts(session: Session, allocation_id: int, *, now: float) -> None:
    """Record (once each) that use reached 80 % and 100 % of the allocation.

    A balance can go below zero only when an attempt used more than it reserved — it ran into
    its stop grace period past the time limit; use is then past 100 %, so that alert is there,
    and the overdraft is logged as an error."""
    balance = ledger.balances(session, [allocation_id])[allocation_id]
    granted = balance.granted_ms
    if balance.left_ms < 0:
        log.error("allocation %s is overdrawn by %d GPU-ms", allocation_id, -balance.left_ms)
    have = set(
        session.scalars(
            select(AllocationAlert.threshold).where(AllocationAlert.allocation_id == allocation_id)
        )
    )
    for threshold in thresholds_crossed(granted, balance.used_ms):
        if threshold in have:
            continue
        allocation = session.get(Allocation, allocation_id)
        name = allocation.name if allocation else str(allocation_id)
        message = (
            f"allocation {name} has used {threshold} % of its {hours_of_ms(granted):.1f} GPU-h "
            f"({hours_of_ms(balance.used_ms):.1f} GPU-h used or reserved)"
        )
        session.add(
            AllocationAlert(
                allocation_id=allocation_id, threshold=threshold, at=now, message=message
            )
        )
        log.warning(message)
        if allocation is not None:
            _tell_owners(session, allocation, threshold, message, now=now)


def _tell_owners(
    session: Session, allocation: Allocation, threshold: int, message: str, *, now: float
) -> None:
    """The project's owners hear of it, in this transaction (store.outbox)."""
    project = session.get(Project, allocation.project_id)
    name = project.name if project else str(allocation.project_id)
    notice = notices.allocation_used(allocation.id, allocation.name, name, threshold, message)
    outbox.notify(session, notice, outbox.owners_of(session, allocation.project_id), now=now)


def tariff_of(programme: Programme) -> Tariff:
    return Tariff(
        {model: Decimal(str(price)) for model, price in programme.gpu_tariffs.items()},
        Decimal(programme.cpu_tariff),
    )


def _usage_of(session: Session, job_id: int, attempt: int) -> UsageRecord | None:
    return session.scalars(
        select(UsageRecord).where(UsageRecord.job_id == job_id, UsageRecord.attempt == attempt)
    ).first()


def _model_of(session: Session, placement: Placement) -> str | None:
    for node_id in sorted(placement):
        node = session.get(Node, node_id)
        if node is not None and node.gpu_model:
            return node.gpu_model
    return None
