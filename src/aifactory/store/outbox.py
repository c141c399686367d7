"""The notifications' outbox: `notify` writes a notice's deliveries in the caller's transaction.

Invariant: a delivery row exists iff the change it tells of was committed, since both are one
transaction; so a crash neither loses a notice nor invents one. Each delivery's key is unique,
so telling the same event twice (a replay after a crash) writes nothing new. Who hears of it
and how is read here, from each recipient's preferences at the time of the event.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain import notices
from aifactory.domain.notifications import Channel, Event, Notice, Preferences, delivery_key
from aifactory.domain.tenancy import ProjectRole
from aifactory.store.models import (
    Job,
    Member,
    NotificationPreference,
    OutboxNotification,
    Project,
    User,
)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
PREFERENCES_CACHE = "aifactory.notification_preferences"


def notify(
    session: Session, notice: Notice, user_ids: Iterable[int], *, now: float, asked: bool = False
) -> int:
    """Queue the notice for each user on the channels they chose; how many were queued.
    `asked`: they asked for this one (Preferences.channels_for)."""
    wanted = [
        (user_id, channel)
        for user_id in sorted(set(user_ids))
        for channel in _channels(session, user_id, notice.event, asked=asked)
    ]
    keys = {delivery_key(notice.key, u, c): (u, c) for u, c in wanted}
    if not keys:
        return 0
    have = set(
        session.scalars(
            select(OutboxNotification.delivery_key).where(
                OutboxNotification.delivery_key.in_(list(keys))
            )
        )
    )
    for key, (user_id, channel) in keys.items():
        if key not in have:
            session.add(_row(notice, key, user_id, channel, now))
    return len(keys) - len(have)


def tell_job_ended(session: Session, job: Job, *, now: float) -> None:
    """The job's owner hears of its end if they asked to, for this job (`notify`) or for
    every job (their preferences); nothing is read otherwise."""
    if not _channels(session, job.user_id, Event.JOB_ENDED, asked=job.notify):
        return
    project = session.get(Project, job.project_id)
    notice = notices.job_ended(
        job.id,
        job.name,
        project.name if project else str(job.project_id),
        job.state,
        job.exit_code,
        job.state_reason,
    )
    notify(session, notice, [job.user_id], now=now, asked=job.notify)


def preferences_of(session: Session, user_id: int) -> Preferences:
    """Cached for the transaction: ending ten thousand jobs reads each owner's once."""
    cache: dict[int, Preferences] = session.info.setdefault(PREFERENCES_CACHE, {})
    if user_id not in cache:
        cache[user_id] = _read_preferences(session, user_id)
    return cache[user_id]


def forget_preferences(session: Session) -> None:
    session.info.pop(PREFERENCES_CACHE, None)


def _read_preferences(session: Session, user_id: int) -> Preferences:
    row = session.get(NotificationPreference, user_id)
    if row is None:
        return Preferences()
    known = {e.value for e in Event}
    events = frozenset(Event(e) for e in row.events if e in known)
    return Preferences(events, row.email, row.webhook_url)


def owners_of(session: Session, project_id: int | None) -> list[int]:
    """The project's owners: who hears of its money and its data."""
    if project_id is None:
        return []
    stmt = select(Member.user_id).where(
        Member.project_id == project_id, Member.role == ProjectRole.OWNER.value
    )
    return list(session.scalars(stmt))


def user_named(session: Session, name: str) -> list[int]:
    """[the user's id], or [] for an actor that is no user (e.g. "retention")."""
    found = session.scalars(select(User.id).where(User.name == name)).first()
    return [] if found is None else [found]


def _channels(
    session: Session, user_id: int, event: Event, *, asked: bool = False
) -> list[Channel]:
    user = session.get(User, user_id)
    if user is None:
        return []
    prefs = preferences_of(session, user_id)
    return prefs.channels_for(event, has_email=bool(user.email), asked=asked)


def _row(
    notice: Notice, key: str, user_id: int, channel: Channel, now: float
) -> OutboxNotification:
    return OutboxNotification(
        delivery_key=key,
        event=notice.event.value,
        user_id=user_id,
        channel=channel.value,
        subject=notice.subject[:300],
        text=notice.text,
        facts=notice.facts,
        created_at=now,
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
    )
