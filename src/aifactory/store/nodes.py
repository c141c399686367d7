"""Node rows: what each executor reports it offers, and their domain view."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.nodes import Node as NodeValue
from aifactory.domain.resources import Resources
from aifactory.store.models import Node


def offer_only(session: Session, *, executor: str, node_ids: set[str]) -> None:
    """Nodes of this executor it no longer offers (drained, down, gone) take no new work; those
    it offers again do, unless drained here (control.drains)."""
    for row in session.scalars(select(Node).where(Node.executor == executor)):
        row.schedulable = row.id in node_ids and row.drained_at is None


def upsert_node(
    session: Session, node: NodeValue, *, executor: str, gpu_ids: list[str], now: float
) -> None:
    row = session.get(Node, node.id) or Node(id=node.id, schedulable=True)
    row.site = node.site
    row.pool = node.pool
    row.executor = executor
    row.gpus = node.capacity.gpus
    row.gpu_model = node.gpu_model
    row.gpu_ids = gpu_ids
    row.cpus = node.capacity.cpus
    row.memory_mb = node.capacity.memory_mb
    row.block = node.block
    row.updated_at = now
    session.add(row)


def node_values(session: Session, *, schedulable_only: bool = True) -> list[NodeValue]:
    """A Core select (no ORM objects): every submission batch reads the nodes."""
    table = Node.__table__
    stmt = select(
        table.c.id,
        table.c.site,
        table.c.pool,
        table.c.gpu_model,
        table.c.gpus,
        table.c.cpus,
        table.c.memory_mb,
        table.c.block,
    ).order_by(table.c.id)
    if schedulable_only:
        stmt = stmt.where(table.c.schedulable.is_(True))
    return [
        NodeValue(
            id=r.id,
            site=r.site,
            pool=r.pool,
            gpu_model=r.gpu_model,
            capacity=Resources(r.gpus, r.cpus, r.memory_mb),
            block=r.block,
        )
        for r in session.execute(stmt)
    ]
