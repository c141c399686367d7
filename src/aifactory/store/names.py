"""The one id → name lookup: views and the control loop show names where rows keep ids."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.store.models import Programme, Project, User

Named = type[Project] | type[User] | type[Programme]


def names_of(session: Session, model: Named, ids: Iterable[int]) -> dict[int, str]:
    """The names of these rows of `model`, by id: one query, whatever the number of ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {row_id: name for row_id, name in rows}
