"""Public holidays, for counting working days (domain.access_modes): the `holidays` package
keeps the lists (King's Day moved off a Sunday, the lustrum Liberation Days), so none is
hand-written here."""

from __future__ import annotations

from datetime import date
from functools import cache

import holidays


@cache
def dutch(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NL", years=year))
