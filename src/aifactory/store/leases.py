"""Database leases: exactly one holder at a time, renewed before it expires.

A lease row names its holder and an `epoch` that grows whenever the holder changes, so work
started under an old epoch can be told apart (a fencing token).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactory.store.models import Lease


def try_acquire(
    session: Session,
    name: str,
    holder: str,
    now: float,
    ttl_s: float,
    is_dead: Callable[[str], bool] = lambda _holder: False,
) -> int | None:
    """Take or renew the lease; return its epoch, or None while another holder has it.

    `is_dead` may vouch that a holder is gone for sure (e.g. a process on this host that no
    longer exists), so its lease is taken over without waiting for it to expire.
    """
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).first()
    if lease is None:
        try:
            with session.begin_nested():
                session.add(Lease(name=name, holder=holder, epoch=1, expires_at=now + ttl_s))
        except IntegrityError:
            return None  # another holder created it first
        return 1
    if lease.holder != holder and lease.expires_at > now and not is_dead(lease.holder):
        return None
    if lease.holder != holder:
        lease.holder = holder
        lease.epoch += 1
    lease.expires_at = now + ttl_s
    return lease.epoch


def release(session: Session, name: str, holder: str) -> None:
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).first()
    if lease is not None and lease.holder == holder:
        lease.expires_at = 0.0
