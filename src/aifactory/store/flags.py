"""Operator switches kept in the database so they survive a restart, and the facility's
instance id."""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from aifactory.store.models import FacilityFlag

ADMISSION_PAUSED = "admission_paused"
INSTANCE = "instance"
OPEN_NETWORK = "open_network"


def admission_paused(session: Session) -> bool:
    flag = session.get(FacilityFlag, ADMISSION_PAUSED)
    return flag is not None and flag.value == "true"


def set_admission_paused(session: Session, paused: bool) -> None:
    flag = session.get(FacilityFlag, ADMISSION_PAUSED) or FacilityFlag(name=ADMISSION_PAUSED)
    flag.value = "true" if paused else "false"
    session.add(flag)


def open_network(session: Session) -> bool:
    """Whether jobs may ask for the host's network (`aifactory up --allow-open-network`)."""
    flag = session.get(FacilityFlag, OPEN_NETWORK)
    return flag is not None and flag.value == "true"


def set_open_network(session: Session, allowed: bool) -> None:
    flag = session.get(FacilityFlag, OPEN_NETWORK) or FacilityFlag(name=OPEN_NETWORK)
    flag.value = "true" if allowed else "false"
    session.add(flag)


def instance_id(session: Session) -> str:
    """A short id made once per facility database: it tells this facility's work apart from
    other facilities' on a shared cluster (e.g. a reinstalled one's jobs still in Slurm)."""
    flag = session.get(FacilityFlag, INSTANCE)
    if flag is None:
        flag = FacilityFlag(name=INSTANCE, value=secrets.token_hex(3))
        session.add(flag)
    return flag.value
