"""The programme rules a new job meets at submission: maximum job size, preemptible default."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.programmes import JobRules, job_rules
from aifactory.store.models import Allocation, Programme


def rules_for(session: Session, project_id: int, now: float) -> JobRules:
    rows = session.execute(
        select(Programme.name, Programme.max_gpus_per_job, Programme.preemptible_default)
        .join(Allocation, Allocation.programme_id == Programme.id)
        .where(
            Allocation.project_id == project_id,
            Allocation.valid_from <= now,
            Allocation.valid_to > now,
        )
    )
    return job_rules((name, limit, default) for name, limit, default in rows)
