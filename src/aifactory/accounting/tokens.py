"""The gateway's tokens into the ledger: for each hour that has ended, one entry per inference
key and allocation that paid, with its requests' tokens and price (the exact sum of their
nano-cents, rounded once to the cent) and the programme's subsidy on it.

Invariants: an hour is booked in one transaction, once — each entry's natural key is
`tokens:<key>:<allocation>:<hour>`, and booking starts after the last hour booked, so a crash
or a second control plane books nothing twice. An hour is booked `SETTLE_AFTER_S` after it
ends: requests are written within a fraction of a second of their answer (gateway.usage), so
every request of the hour is in by then. Invoices bill the requests themselves (exact, by the
time they were asked); these entries put the same money on the allocation's books.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.accounting import ledger
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import token_cost_and_subsidy_cents
from aifactory.store.db import Database
from aifactory.store.models import InferenceKey, InferenceUsage, LedgerEntry

log = logging.getLogger("aifactory.accounting")
HOUR_S = 3600.0
SETTLE_AFTER_S = 300.0
HOURS_PER_ROUND = 200  # a facility back after a long stop catches up over a few rounds
ACTOR = "gateway"


class TokenBooker:
    """Books what has ended, each `every_s` (on the acting control loop)."""

    def __init__(self, db: Database, *, every_s: float = 60.0) -> None:
        self.db = db
        self.every_s = every_s
        self._last = float("-inf")

    def __call__(self, now: float) -> None:
        if now - self._last < self.every_s:
            return
        self._last = now
        with self.db.session() as session:
            book_tokens(session, now=now)


def book_tokens(session: Session, *, now: float) -> int:
    """Book every hour with paid requests that ended before now − SETTLE_AFTER_S and after the
    last hour booked; the number of entries posted."""
    until = _hour_of(now - SETTLE_AFTER_S)  # hours that start before this have ended
    booked = session.scalar(
        select(func.max(LedgerEntry.at)).where(LedgerEntry.kind == EntryKind.TOKENS.value)
    )
    since = booked if booked is not None else float("-inf")
    posted = 0
    for _ in range(HOURS_PER_ROUND):
        first = session.scalar(
            select(func.min(InferenceUsage.at)).where(
                InferenceUsage.allocation_id.is_not(None),
                InferenceUsage.at >= since,
                InferenceUsage.at < until,
            )
        )
        if first is None:
            break
        hour = _hour_of(first)
        posted += _book_hour(session, hour)
        since = hour + HOUR_S
    return posted


def _book_hour(session: Session, hour: float) -> int:
    """The entries of [hour, hour + 1 h); each entry's `at` is the hour's end."""
    stmt = (
        select(
            InferenceUsage.key_id,
            InferenceUsage.allocation_id,
            InferenceUsage.subsidy_pct,
            InferenceKey.name,
            func.count(),
            func.sum(InferenceUsage.prompt_tokens),
            func.sum(InferenceUsage.completion_tokens),
            func.sum(InferenceUsage.cost_nanocents),
        )
        .join(InferenceKey, InferenceKey.id == InferenceUsage.key_id)
        .where(
            InferenceUsage.allocation_id.is_not(None),
            InferenceUsage.at >= hour,
            InferenceUsage.at < hour + HOUR_S,
        )
        .group_by(
            InferenceUsage.key_id,
            InferenceUsage.allocation_id,
            InferenceUsage.subsidy_pct,
            InferenceKey.name,
        )
        .order_by(InferenceUsage.key_id, InferenceUsage.allocation_id, InferenceUsage.subsidy_pct)
    )
    when = datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d %H:00")
    posted = 0
    for key_id, allocation_id, pct, name, n, prompt, completion, nanocents in session.execute(stmt):
        assert allocation_id is not None  # the query keeps paid requests only
        cost, subsidy = token_cost_and_subsidy_cents([(int(nanocents), pct)])
        posted += ledger.post(
            session,
            allocation_id=allocation_id,
            kind=EntryKind.TOKENS,
            gpu_ms=0,
            key=f"tokens:{key_id}:{allocation_id}:{pct}:{int(hour)}",
            at=hour + HOUR_S,
            actor=ACTOR,
            reason=(
                f"key {name}: {n} requests, {int(prompt)} prompt + {int(completion)} "
                f"completion tokens, {when} UTC"
            ),
            cost_cents=cost,
            subsidy_cents=subsidy,
        )
    return posted


def _hour_of(at: float) -> float:
    return (at // HOUR_S) * HOUR_S
