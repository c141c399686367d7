"""Money and metered time as exact numbers: euro cents, and GPU- or CPU-milliseconds.

Units: tariffs are `Decimal` euros per hour; metered time (usage records and the ledger) is
whole milliseconds of a device, the ledger's smallest unit, so sums are exact and "balances to
the millisecond" can be checked with `==`. The clock's float reading is taken to the
millisecond once, when an attempt is metered (`ms_of_seconds`).

Rounding rule: the price of metered time is exact (`exact_euros`, a `Fraction`) and is
rounded to the cent once, half up (a half cent away from zero), where a figure is shown or
billed (`cents_of`): an invoice line rounds the exact sum of the records it covers, never a
sum of records rounded one by one. Whole seconds (`whole_seconds`) are for showing only.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

HOUR_S = 3600
MS_PER_S = 1000
MS_PER_HOUR = HOUR_S * MS_PER_S
CENT = Decimal("0.01")
_HALF = Fraction(1, 2)


def cents(euros: Decimal) -> int:
    return int(euros.quantize(CENT, rounding=ROUND_HALF_UP) * 100)


def cents_of(amount_euros: Fraction) -> int:
    """An exact amount to the cent, half up (away from zero, as `ROUND_HALF_UP` does)."""
    hundredths = abs(amount_euros) * 100
    whole = int(hundredths + _HALF)  # int() truncates: a floor, for what is not negative
    return whole if amount_euros >= 0 else -whole


def euros(amount_cents: int) -> Decimal:
    return (Decimal(amount_cents) / 100).quantize(CENT)


def euro_text(amount_cents: int) -> str:
    return f"€ {euros(amount_cents):,.2f}"


def gpu_hours(gpu_s: int | float) -> float:
    return gpu_s / HOUR_S


def hours_of_ms(ms: int) -> float:
    """Device-hours in a number of device-milliseconds (for showing: a float)."""
    return ms / MS_PER_HOUR


def gpu_seconds(hours: float) -> int:
    return round(hours * HOUR_S)


def ms_of_seconds(seconds: float) -> int:
    """The clock's seconds to the nearest millisecond: the one rounding metered time gets."""
    return round(seconds * MS_PER_S)


def whole_seconds(ms: int) -> int:
    """Milliseconds shown as whole seconds, half up; never summed, never billed."""
    seconds = (abs(ms) + MS_PER_S // 2) // MS_PER_S
    return seconds if ms >= 0 else -seconds


def exact_euros(ms: int, euros_per_hour: Decimal) -> Fraction:
    """The price of `ms` milliseconds of a resource at an hourly tariff, unrounded."""
    return Fraction(ms) * Fraction(euros_per_hour) / MS_PER_HOUR


def cost_cents(ms: int, euros_per_hour: Decimal) -> int:
    """The price of `ms` milliseconds of a resource at an hourly tariff, to the cent."""
    return cents_of(exact_euros(ms, euros_per_hour))


def share_cents(amount_cents: int, percent: int) -> int:
    """`percent` % of an amount, to the cent (half up), never more than the amount."""
    part = cents(Decimal(amount_cents) * percent / 100 / 100)
    return min(part, amount_cents) if amount_cents >= 0 else part


# Tokens through the gateway (issue 19) are priced in € per million tokens, to at most
# TOKEN_PRICE_PLACES decimals; a request's price is then a whole number of nano-cents
# (10⁻⁹ cent), summed exactly and rounded to the cent once, where shown or billed.
TOKEN_PRICE_PLACES = 5
MAX_TOKEN_TARIFF = Decimal(1000)  # € per million tokens: anything above is a typo
NANOCENTS_PER_EURO = 10**11
TOKENS_PER_PRICE = 1_000_000


def token_tariff_problem(per_million: Decimal) -> str | None:
    if not per_million.is_finite() or not 0 <= per_million <= MAX_TOKEN_TARIFF:
        return f"must be 0–{MAX_TOKEN_TARIFF} € per million tokens, not {per_million}"
    exponent = per_million.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -TOKEN_PRICE_PLACES:
        return f"{per_million} has more than {TOKEN_PRICE_PLACES} decimal places"
    return None


def token_nanocents(tokens: int, per_million: Decimal) -> int:
    """The exact price of `tokens` at `per_million` € per million tokens, in nano-cents."""
    exact = Fraction(tokens) * Fraction(per_million) * NANOCENTS_PER_EURO / TOKENS_PER_PRICE
    return int(exact) if exact.denominator == 1 else cents_of(exact / 100)  # never: 5 places


def cents_of_nanocents(nanocents: int) -> int:
    """An exact sum of nano-cents to the cent, half up (once, where shown or billed)."""
    return cents_of(Fraction(nanocents, NANOCENTS_PER_EURO))


def exact_euros_text(nanocents: int) -> str:
    """Nano-cents as euros, every decimal kept: "0.00009", "1.25"."""
    value = (Decimal(nanocents) / NANOCENTS_PER_EURO).normalize()
    text = format(value, "f")
    return text if "." in text and len(text.split(".")[1]) >= 2 else str(value.quantize(CENT))


def token_cost_and_subsidy_cents(priced: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """The cost of (nano-cents, subsidy %) parts and the subsidy on it, each its exact sum
    rounded once to the cent."""
    parts = [(Fraction(nanocents, NANOCENTS_PER_EURO), pct) for nanocents, pct in priced]
    cost = sum((euros for euros, _ in parts), Fraction(0))
    subsidy = sum((euros * pct / 100 for euros, pct in parts), Fraction(0))
    return cents_of(cost), cents_of(subsidy)
