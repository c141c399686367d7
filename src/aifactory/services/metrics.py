"""The facility in figures, for Prometheus (`/metrics`, docs/metrics.md), and who may read them.

Invariants: every figure is read at scrape time from the database, in one read session, so
every API worker answers the same whatever process runs the control loop. Each figure is one
aggregate query (GROUP BY in SQL): the job history, the ledger and the usage records are never
walked row by row in Python; only the active jobs' placements are (bounded by the GPUs).

Words: a *scrape* is one read of `/metrics`; its *access* is a bearer token and/or networks
the scraper's address must be in, and with neither only loopback may scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from aifactory.domain.jobs import ACTIVE, WAITING
from aifactory.domain.ledger import EntryKind
from aifactory.domain.placement import Placement, placement_of
from aifactory.errors import PermissionDenied, Unauthenticated
from aifactory.store import flags
from aifactory.store.models import (
    Allocation,
    InferenceKey,
    Job,
    LedgerEntry,
    Node,
    Programme,
    Project,
    UsageRecord,
)

NONE = "none"  # the label of a programme or GPU model there is none of
# Bounds of the wait histogram (seconds): a minute to a week, as a queue's waits spread.
WAIT_BUCKETS_S: tuple[float, ...] = (10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
_LEDGER_KINDS = {  # how an entry kind's GPU time counts, by the name the metric gives it
    EntryKind.AWARD: ("awarded", 1),
    EntryKind.ADJUST: ("adjusted", 1),
    EntryKind.SETTLE: ("settled", -1),
    EntryKind.RESERVE: ("reserved", -1),
    EntryKind.RELEASE: ("reserved", -1),
}


# ---- access ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScrapeAccess:
    """config.Settings.metrics_token / metrics_from. A token alone: any address with it; networks
    alone: any scraper in them; both: both asked; neither: loopback only."""

    token: str | None = None
    networks: tuple[str, ...] = ()

    def check(self, *, client: str | None, bearer: str | None) -> None:
        """Raise Unauthenticated (no or a wrong token) or PermissionDenied (an address outside
        the networks). `client` is the address uvicorn resolved, trusted proxies' included."""
        if self.token is not None and not _same(bearer, self.token):
            raise Unauthenticated("a scrape needs the metrics token (Bearer)")
        allowed = self.networks or (() if self.token else ("127.0.0.0/8", "::1/128"))
        if allowed and not _inside(client, allowed):
            raise PermissionDenied(f"{client or 'this address'} may not scrape the metrics")


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _inside(client: str | None, networks: Sequence[str]) -> bool:
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:  # no address (a Unix socket) or a name: not in any network
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


# ---- figures --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Gpus:
    node: str
    gpu_model: str
    busy: int
    free: int
    unschedulable: int  # idle on a node that takes no new work (drained, unhealthy)


@dataclass(frozen=True, slots=True)
class FacilityFigures:
    """Counts by their labels, as the metrics carry them (docs/metrics.md)."""

    jobs: dict[tuple[str, str, str], int]  # (state, project, programme) → jobs
    waiting_jobs: int
    waiting_gpus: int
    oldest_wait_s: float  # 0 with nothing waiting
    wait_buckets: tuple[tuple[float, int], ...]  # (bound, admitted jobs that waited ≤ it)
    wait_count: int
    wait_sum_s: float
    gpus: tuple[Gpus, ...]
    admission_paused: bool
    ledger_gpu_hours: dict[tuple[str, str], float]  # (programme, kind) → GPU-hours
    energy_kwh: dict[str, float]  # GPU model → kWh metered
    inference_tokens: dict[str, int]  # project → tokens through the gateway
    gangs: int  # active jobs over several nodes
    gangs_across_blocks: int  # of them, those whose nodes span several network blocks
    block_idle_nodes: dict[str, int]  # block → schedulable nodes no active job is on


def read_figures(session: Session, now: float) -> FacilityFigures:
    """Every figure, each from one aggregate query (see the module's invariants)."""
    programmes = programme_of_projects(session, now)
    waiting_jobs, waiting_gpus, oldest = _queue(session, now)
    buckets, count, total = _waits(session)
    nodes = list(session.scalars(select(Node).order_by(Node.id)))
    placed = _placements(session)
    gangs = [p for p in placed if len(p) > 1]
    return FacilityFigures(
        jobs=_jobs(session, programmes),
        waiting_jobs=waiting_jobs,
        waiting_gpus=waiting_gpus,
        oldest_wait_s=oldest,
        wait_buckets=buckets,
        wait_count=count,
        wait_sum_s=total,
        gpus=_gpus(nodes, placed),
        admission_paused=flags.admission_paused(session),
        ledger_gpu_hours=_ledger(session),
        energy_kwh=_energy(session),
        inference_tokens=_tokens(session),
        gangs=len(gangs),
        gangs_across_blocks=_across_blocks(nodes, gangs),
        block_idle_nodes=_block_idle_nodes(nodes, placed),
    )


def programme_of_projects(session: Session, now: float) -> dict[str, str]:
    """Each project's programme: that of its largest allocation in force now (a project
    funded by several counts under one, so the metric's sums stay sums)."""
    rows = session.execute(
        select(Project.name, Programme.name, Allocation.award_gpu_s)
        .join(Project, Project.id == Allocation.project_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .where(Allocation.valid_from <= now, Allocation.valid_to > now)
        .order_by(Allocation.award_gpu_s, Programme.name.desc())
    )
    return {project: programme for project, programme, _ in rows}  # the largest comes last


def _jobs(session: Session, programmes: dict[str, str]) -> dict[tuple[str, str, str], int]:
    """Counted by project id, named after: a join per job costs as much as the count."""
    names = {i: name for i, name in session.execute(select(Project.id, Project.name))}
    rows = session.execute(
        select(Job.state, Job.project_id, func.count()).group_by(Job.state, Job.project_id)
    )
    found: dict[tuple[str, str, str], int] = {}
    for state, project_id, n in rows:
        project = names.get(project_id, str(project_id))
        found[(state, project, programmes.get(project, NONE))] = n
    return found


def _queue(session: Session, now: float) -> tuple[int, int, float]:
    jobs, gpus, first = session.execute(
        select(
            func.count(), func.sum(Job.gpus_per_node * Job.nodes), func.min(Job.submitted_at)
        ).where(Job.state.in_([s.value for s in WAITING]))
    ).one()
    return int(jobs), int(gpus or 0), max(0.0, now - first) if first is not None else 0.0


def _waits(session: Session) -> tuple[tuple[tuple[float, int], ...], int, float]:
    """From submission to the latest admission, over every job ever admitted."""
    wait = Job.admitted_at - Job.submitted_at
    columns = [func.sum(case((wait <= bound, 1), else_=0)) for bound in WAIT_BUCKETS_S]
    row = session.execute(
        select(func.count(), func.sum(wait), *columns).where(Job.admitted_at.is_not(None))
    ).one()
    count, total, *within = row
    buckets = tuple((b, int(n or 0)) for b, n in zip(WAIT_BUCKETS_S, within, strict=True))
    return buckets, int(count), float(total or 0.0)


def _placements(session: Session) -> list[Placement]:
    """The active jobs' placements (bounded by the GPUs, see the module's invariants)."""
    placed = session.scalars(select(Job.placement).where(Job.state.in_([s.value for s in ACTIVE])))
    return [placement_of(p) for p in placed]


def _gpus(nodes: Sequence[Node], placed: Sequence[Placement]) -> tuple[Gpus, ...]:
    busy: dict[str, int] = {}
    for placement in placed:
        for node_id, share in placement.items():
            busy[node_id] = busy.get(node_id, 0) + share.gpus
    found = []
    for node in nodes:
        used = min(busy.get(node.id, 0), node.gpus)
        idle = node.gpus - used
        found.append(
            Gpus(
                node.id,
                node.gpu_model or NONE,
                busy=used,
                free=idle if node.schedulable else 0,
                unschedulable=0 if node.schedulable else idle,
            )
        )
    return tuple(found)


def _across_blocks(nodes: Sequence[Node], gangs: Sequence[Placement]) -> int:
    """Gangs on nodes of several blocks: their collectives cross the spine. Nodes without a
    block count as one block together, as the scheduler counts them (scheduler.topology)."""
    block = {n.id: n.block for n in nodes}
    return sum(1 for gang in gangs if len({block.get(node_id) for node_id in gang}) > 1)


def _block_idle_nodes(nodes: Sequence[Node], placed: Sequence[Placement]) -> dict[str, int]:
    """Every block's idle nodes (0 included): few in each of many blocks is fragmentation,
    the gangs that need one block wait for it. Nodes without a block are left out."""
    used = {node_id for placement in placed for node_id in placement}
    idle: dict[str, int] = {}
    for node in nodes:
        if node.block is not None:
            free = node.schedulable and node.id not in used
            idle[node.block] = idle.get(node.block, 0) + int(free)
    return idle


def _ledger(session: Session) -> dict[tuple[str, str], float]:
    rows = session.execute(
        select(Programme.name, LedgerEntry.kind, func.sum(LedgerEntry.gpu_ms))
        .join(Allocation, Allocation.id == LedgerEntry.allocation_id)
        .join(Programme, Programme.id == Allocation.programme_id)
        .group_by(Programme.name, LedgerEntry.kind)
    )
    found: dict[tuple[str, str], float] = {}
    for programme, kind, gpu_ms in rows:
        named = _LEDGER_KINDS.get(EntryKind(kind))
        if named is None:  # tokens: money only
            continue
        key = (programme, named[0])
        found[key] = found.get(key, 0.0) + named[1] * int(gpu_ms or 0) / 3_600_000
    return found


def _energy(session: Session) -> dict[str, float]:
    rows = session.execute(
        select(UsageRecord.gpu_model, func.sum(UsageRecord.energy_j)).group_by(
            UsageRecord.gpu_model
        )
    )
    return {model or NONE: float(joules or 0.0) / 3.6e6 for model, joules in rows}


def _tokens(session: Session) -> dict[str, int]:
    """From each key's running total (services.gateway): never a walk of every request."""
    rows = session.execute(
        select(Project.name, func.sum(InferenceKey.tokens_used))
        .join(Project, Project.id == InferenceKey.project_id)
        .group_by(Project.name)
    )
    return {project: int(tokens or 0) for project, tokens in rows}
