"""The ledger's rules: entry kinds and how an allocation's balance follows from its entries.

Every entry carries `gpu_ms`, its signed effect on the allocation's balance in
GPU-milliseconds (the unit usage is metered in, domain.money, so a settlement takes exactly
what the attempt's usage record shows and nothing is lost to rounding): an award or a
positive adjustment adds, a reservation takes the job's most (GPUs × time limit), a release
gives that reservation back in full when the attempt ends, and a settlement takes what the
attempt really used. So at every moment

    balance = Σ gpu_ms = award + adjustments − settled use − open reservations

Token entries (an inference key's requests of an hour, accounting.tokens) carry money and no
GPU time: the replicas that served them are jobs, settled as any job.

Entries are never changed or deleted; each has a natural key (e.g. job 12, attempt 1, settle)
so replaying an action after a crash cannot charge twice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from aifactory.domain.money import MS_PER_S


class EntryKind(enum.StrEnum):
    AWARD = "award"
    RESERVE = "reserve"
    RELEASE = "release"
    SETTLE = "settle"
    ADJUST = "adjust"
    TOKENS = "tokens"  # a key's tokens through the gateway in an hour: money only, no GPU time


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    gpu_ms: int
    key: str


def entry_key(kind: EntryKind, job_id: int, attempt: int) -> str:
    return f"job:{job_id}:{attempt}:{kind.value}"


@dataclass(frozen=True, slots=True)
class Balance:
    """An allocation's balance by kind in GPU-milliseconds (`*_ms`, exact: compare and decide
    on these); the plain names give the same in GPU-seconds, for showing."""

    awarded_ms: int
    adjusted_ms: int
    settled_ms: int
    reserved_ms: int  # open reservations: reserved and not yet released

    @property
    def granted_ms(self) -> int:
        return self.awarded_ms + self.adjusted_ms

    @property
    def left_ms(self) -> int:
        return self.granted_ms - self.settled_ms - self.reserved_ms

    @property
    def used_ms(self) -> int:
        return self.settled_ms + self.reserved_ms

    @property
    def awarded(self) -> float:
        return self.awarded_ms / MS_PER_S

    @property
    def adjusted(self) -> float:
        return self.adjusted_ms / MS_PER_S

    @property
    def settled(self) -> float:
        return self.settled_ms / MS_PER_S

    @property
    def reserved(self) -> float:
        return self.reserved_ms / MS_PER_S

    @property
    def left(self) -> float:
        return self.left_ms / MS_PER_S

    @property
    def used(self) -> float:
        return self.used_ms / MS_PER_S


def balance_of(entries: Iterable[Entry]) -> Balance:
    """Sum the entries by kind; `reserved` counts only reservations not yet released."""
    totals = dict.fromkeys(EntryKind, 0)
    for entry in entries:
        totals[entry.kind] += entry.gpu_ms
    return Balance(
        awarded_ms=totals[EntryKind.AWARD],
        adjusted_ms=totals[EntryKind.ADJUST],
        settled_ms=-totals[EntryKind.SETTLE],
        reserved_ms=-(totals[EntryKind.RESERVE] + totals[EntryKind.RELEASE]),
    )
