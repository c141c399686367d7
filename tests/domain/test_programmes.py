"""Pure programme rules: who pays for a job, alerts, entitlements from awards, job rules,
tariff and date checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aifactory.domain.ledger import Entry, EntryKind, balance_of
from aifactory.domain.money import cost_cents, share_cents
from aifactory.domain.programmes import (
    Award,
    Funds,
    Tariff,
    Window,
    conflict_of_interest,
    entitlements,
    job_rules,
    payer,
    thresholds_crossed,
)

H = 3_600_000  # GPU-milliseconds in a GPU-hour: the ledger's unit


def funds(aid: int, left_h: float, start: float = 0, end: float = 100, model: str | None = None):
    return Funds(aid, f"a{aid}", "p", Window(start, end), round(left_h * H), model)


def test_a_balance_a_millisecond_short_does_not_pay() -> None:
    assert isinstance(payer([funds(1, 1)], H, None, 0), Funds)
    assert isinstance(payer([funds(1, 1)], H + 1, None, 0), str)


def test_the_allocation_that_expires_first_pays() -> None:
    chosen = payer(
        [funds(1, 10, end=90), funds(2, 10, end=50), funds(3, 1, end=10)], 5 * H, None, 0
    )
    assert isinstance(chosen, Funds)
    assert chosen.allocation_id == 2  # a3 ends sooner but cannot cover 5 GPU-h


def test_no_allocation_that_covers_names_the_largest_balance() -> None:
    reason = payer([funds(1, 3), funds(2, 12)], 32 * H, None, 0)
    assert reason == "allocation a2 has 12.0 GPU-h left, job needs up to 32.0"


def test_expired_or_wrong_model_allocations_do_not_pay() -> None:
    assert payer([funds(1, 99, end=10)], H, None, 10) == "the project has no allocation valid now"
    only_a100 = [funds(1, 99, model="a100")]
    assert payer(only_a100, H, "h100", 0) == (
        "the project has no allocation valid now for GPU model h100"
    )
    assert isinstance(payer(only_a100, H, None, 0), Funds)


def test_alert_thresholds() -> None:
    assert thresholds_crossed(100, 79) == []
    assert thresholds_crossed(100, 80) == [80]
    assert thresholds_crossed(100, 130) == [80, 100]
    assert thresholds_crossed(0, 5) == []


def test_balance_counts_only_open_reservations() -> None:
    entries = [
        Entry(EntryKind.AWARD, 1000, "a"),
        Entry(EntryKind.RESERVE, -300, "r1"),
        Entry(EntryKind.RESERVE, -200, "r2"),
        Entry(EntryKind.RELEASE, 300, "l1"),
        Entry(EntryKind.SETTLE, -120, "s1"),
        Entry(EntryKind.ADJUST, 50, "j"),
    ]
    balance = balance_of(entries)
    assert (balance.awarded_ms, balance.adjusted_ms, balance.settled_ms, balance.reserved_ms) == (
        1000,
        50,
        120,
        200,
    )
    assert balance.left_ms == sum(e.gpu_ms for e in entries) == 730
    assert (balance.granted_ms, balance.used_ms) == (1050, 320)
    # In GPU-seconds, for showing: the same balance, not rounded.
    assert (balance.awarded, balance.settled, balance.left, balance.used) == (1, 0.12, 0.73, 0.32)


def test_pool_shares_are_split_then_shared_by_award() -> None:
    """Half the facility to research (one project), half to startups (three equal awards)."""
    awards = [
        Award("r", "research", 0.5, 100 * H, quota_gpus=8, priority_weight=100),
        Award("s1", "startup", 0.5, 100 * H),
        Award("s2", "startup", 0.5, 100 * H, priority_weight=50),
        Award("s3", "startup", 0.5, 100 * H),
        Award("r", "startup", 0.5, 0),  # an empty award adds nothing but its weight
    ]
    got = entitlements(awards)
    assert got["r"].shares == pytest.approx(0.5)
    assert [got[p].shares for p in ("s1", "s2", "s3")] == pytest.approx([1 / 6] * 3)
    assert (got["r"].quota_gpus, got["r"].priority_weight) == (8, 100)
    assert got["s2"].priority_weight == 50


def test_job_rules_take_the_most_lenient_size_and_a_unanimous_preemptible_default() -> None:
    rules = job_rules([("startup", 16, True), ("sme", 8, True)])
    assert (rules.max_gpus, rules.preemptible_default) == (16, True)
    assert rules.too_large(17) is not None
    assert rules.too_large(16) is None
    mixed = job_rules([("startup", 16, True), ("research", None, False)])
    assert (mixed.max_gpus, mixed.preemptible_default) == (None, False)
    assert job_rules([]).too_large(10_000) is None


@pytest.mark.parametrize(
    ("tariff", "field"),
    [
        (Tariff({"*": Decimal("-1")}), "tariffs"),
        (Tariff({"h100": Decimal("5000")}), "tariffs"),
        (Tariff({"*": Decimal("NaN")}), "tariffs"),
        (Tariff({}, Decimal("-0.01")), "cpu_tariff"),
    ],
)
def test_negative_or_absurd_tariffs_are_refused(tariff: Tariff, field: str) -> None:
    problem = tariff.problem()
    assert problem is not None
    assert problem[0] == field


def test_a_model_without_its_own_price_pays_the_default() -> None:
    tariff = Tariff({"*": Decimal("2.00"), "h100": Decimal("3.10")})
    assert tariff.per_gpu_hour("h100") == Decimal("3.10")
    assert tariff.per_gpu_hour("a100") == Decimal("2.00")
    assert Tariff().per_gpu_hour("h100") == 0
    assert Tariff({"h100": Decimal(1)}).problem() is None


def test_windows_and_conflicts() -> None:
    assert Window(0, 10).overlaps(Window(9, 20))
    assert not Window(0, 10).overlaps(Window(10, 20))  # half-open: back to back is fine
    assert Window(5, 5).problem("allocation") == "allocation must end after it starts"
    assert conflict_of_interest([1, 2], 2)
    assert not conflict_of_interest([1], 2)


def test_money_rounds_half_up_to_the_cent() -> None:
    assert cost_cents(1_800_000, Decimal("2.50")) == 125
    assert cost_cents(900_000, Decimal("0.02")) == 1  # half a cent rounds up
    assert share_cents(126, 100) == 126
    assert share_cents(125, 50) == 63
