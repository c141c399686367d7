"""Money and GPU time as exact integers: euro cents and GPU-seconds.

Tariffs are `Decimal` euros per hour; every amount that is stored is a whole number of cents,
rounded half up once, where it is computed. GPU time in the ledger is whole GPU-seconds, so a
balance is exact and "balances to the GPU-second" can be checked with `==`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

HOUR_S = 3600
CENT = Decimal("0.01")


def cents(euros: Decimal) -> int:
    return int(euros.quantize(CENT, rounding=ROUND_HALF_UP) * 100)


def euros(amount_cents: int) -> Decimal:
    return (Decimal(amount_cents) / 100).quantize(CENT)


def euro_text(amount_cents: int) -> str:
    return f"€ {euros(amount_cents):,.2f}"


def gpu_hours(gpu_s: int | float) -> float:
    return gpu_s / HOUR_S


def gpu_seconds(hours: float) -> int:
    return round(hours * HOUR_S)


def cost_cents(seconds: float, euros_per_hour: Decimal) -> int:
    """The price of `seconds` of a resource at an hourly tariff, to the cent."""
    return cents(Decimal(str(seconds)) * euros_per_hour / HOUR_S)


def share_cents(amount_cents: int, percent: int) -> int:
    """`percent` % of an amount, to the cent (half up), never more than the amount."""
    part = cents(Decimal(amount_cents) * percent / 100 / 100)
    return min(part, amount_cents) if amount_cents >= 0 else part
