"""Operator switches kept in the database so they survive a restart."""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactory.store.models import FacilityFlag

ADMISSION_PAUSED = "admission_paused"


def admission_paused(session: Session) -> bool:
    flag = session.get(FacilityFlag, ADMISSION_PAUSED)
    return flag is not None and flag.value == "true"


def set_admission_paused(session: Session, paused: bool) -> None:
    flag = session.get(FacilityFlag, ADMISSION_PAUSED) or FacilityFlag(name=ADMISSION_PAUSED)
    flag.value = "true" if paused else "false"
    session.add(flag)
