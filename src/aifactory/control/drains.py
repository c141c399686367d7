"""The one writer of a node's drain: `drain` and `resume` change the drain columns and
`schedulable` together and record the audit event in the same transaction.

Invariant: a drained node is never schedulable (store.nodes.offer_only keeps it so when the
executor offers it again); a resumed node is schedulable until the executor's next inventory
says it does not offer it (down on Slurm, gone).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactory.domain.node_health import Drain
from aifactory.governance import audit
from aifactory.store.models import Node


def drain_of(row: Node) -> Drain | None:
    if row.drained_at is None:
        return None
    return Drain(row.drain_reason or "", row.drained_by or "", row.drained_at)


def drain(
    session: Session, row: Node, *, reason: str, by: str, now: float, source: str | None = None
) -> None:
    """Drain the node. Drained already: the new reason and drainer replace the old, and it
    stays drained since it first was (it has been out of service all along)."""
    row.drain_reason, row.drained_by = reason, by
    row.drained_at = row.drained_at if row.drained_at is not None else now
    row.schedulable = False
    audit.record(
        session,
        actor=by,
        action="node.drain",
        object=f"node:{row.id}",
        at=now,
        source=source,
        detail={"reason": reason},
    )


def resume(session: Session, row: Node, *, by: str, now: float, source: str | None = None) -> None:
    was = drain_of(row)
    row.drain_reason = row.drained_by = row.drained_at = None
    row.schedulable = True
    audit.record(
        session,
        actor=by,
        action="node.resume",
        object=f"node:{row.id}",
        at=now,
        source=source,
        detail={"was": {"reason": was.reason, "by": was.by}} if was else None,
    )
