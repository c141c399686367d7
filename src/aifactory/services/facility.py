"""The facility as operators run it: its nodes, queue counts, and admission switch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.store import flags
from aifactory.store.models import Job, Node


@dataclass(frozen=True, slots=True)
class FacilityStatus:
    nodes: list[Node]
    jobs_by_state: dict[str, int]
    admission_paused: bool


def status(session: Session, principal: Principal) -> FacilityStatus:
    del principal  # every signed-in user may see the facility's size and load
    nodes = list(session.scalars(select(Node).order_by(Node.id)))
    counts = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return FacilityStatus(nodes, {state: n for state, n in counts}, flags.admission_paused(session))


def set_admission(session: Session, principal: Principal, *, paused: bool, now: float) -> None:
    principal.authorize(Action.FACILITY_PAUSE)
    flags.set_admission_paused(session, paused)
    audit.record(
        session,
        actor=principal.name,
        action="facility.pause" if paused else "facility.resume",
        object="facility:admission",
        at=now,
        source=principal.source,
    )


def has_nodes(session: Session) -> bool:
    return session.scalars(select(Node.id).limit(1)).first() is not None
