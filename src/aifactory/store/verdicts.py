"""The verdicts the control loop keeps (models.JobVerdict): written per round as a change set
against what the loop wrote last, so a round that moves a few jobs writes a few rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from aifactory.store.models import FacilityFlag, JobVerdict

DECIDED_AT = "verdicts_decided_at"  # facility flag: when the kept verdicts were made
CHUNK = 500  # ids per statement: well under every database's parameter limit


@dataclass(frozen=True, slots=True)
class Kept:
    """One verdict as stored."""

    held: bool
    position: int | None
    reason: str
    estimated_start: float | None


def keep(
    session: Session,
    verdicts: Mapping[int, Kept],
    *,
    now: float,
    previous: Mapping[int, Kept] | None,
) -> None:
    """Make the stored verdicts `verdicts`. `previous`: what is stored now, as this loop wrote
    it (None: unknown, e.g. a new lease term: everything is written again)."""
    if previous is None:
        session.execute(delete(JobVerdict))
        _insert(session, verdicts, verdicts.keys(), now)
    else:
        for part in _chunks(sorted(previous.keys() - verdicts.keys())):
            session.execute(delete(JobVerdict).where(JobVerdict.job_id.in_(part)))
        _insert(session, verdicts, verdicts.keys() - previous.keys(), now)
        changed = [i for i in verdicts if i in previous and previous[i] != verdicts[i]]
        if changed:
            session.execute(update(JobVerdict), [_row(i, verdicts[i], now) for i in changed])
    flag = session.get(FacilityFlag, DECIDED_AT) or FacilityFlag(name=DECIDED_AT)
    flag.value = repr(now)
    session.add(flag)


def decided_at(session: Session) -> float | None:
    """When the kept verdicts were made; None: no round has kept any (no control loop ran)."""
    flag = session.get(FacilityFlag, DECIDED_AT)
    return None if flag is None else float(flag.value)


def _insert(session: Session, verdicts: Mapping[int, Kept], ids: Iterable[int], now: float) -> None:
    rows = [_row(i, verdicts[i], now) for i in sorted(ids)]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(JobVerdict), rows[start : start + CHUNK])


def _row(job_id: int, kept: Kept, now: float) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "held": kept.held,
        "position": kept.position,
        "reason": kept.reason,
        "estimated_start": kept.estimated_start,
        "decided_at": now,
    }


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])
