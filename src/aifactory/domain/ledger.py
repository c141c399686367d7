"""The ledger's rules: entry kinds and how an allocation's balance follows from its entries.

Every entry carries `gpu_s`, its signed effect on the allocation's balance in GPU-seconds:
an award or a positive adjustment adds, a reservation takes the job's most (GPUs × time limit),
a release gives that reservation back in full when the attempt ends, and a settlement takes
what the attempt really used. So at every moment

    balance = Σ gpu_s = award + adjustments − settled use − open reservations

Entries are never changed or deleted; each has a natural key (e.g. job 12, attempt 1, settle)
so replaying an action after a crash cannot charge twice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class EntryKind(enum.StrEnum):
    AWARD = "award"
    RESERVE = "reserve"
    RELEASE = "release"
    SETTLE = "settle"
    ADJUST = "adjust"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    gpu_s: int
    key: str


def entry_key(kind: EntryKind, job_id: int, attempt: int) -> str:
    return f"job:{job_id}:{attempt}:{kind.value}"


@dataclass(frozen=True, slots=True)
class Balance:
    awarded: int
    adjusted: int
    settled: int
    reserved: int  # open reservations: reserved and not yet released

    @property
    def left(self) -> int:
        return self.awarded + self.adjusted - self.settled - self.reserved

    @property
    def used(self) -> int:
        return self.settled + self.reserved


def balance_of(entries: Iterable[Entry]) -> Balance:
    """Sum the entries by kind; `reserved` counts only reservations not yet released."""
    totals = dict.fromkeys(EntryKind, 0)
    for entry in entries:
        totals[entry.kind] += entry.gpu_s
    return Balance(
        awarded=totals[EntryKind.AWARD],
        adjusted=totals[EntryKind.ADJUST],
        settled=-totals[EntryKind.SETTLE],
        reserved=-(totals[EntryKind.RESERVE] + totals[EntryKind.RELEASE]),
    )
