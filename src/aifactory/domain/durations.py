"""Durations as people write them: one rule for the CLI, job files and the portal (issue 17).

A bare number is refused. `--time-limit 30` meant 30 seconds here and means 30 minutes to a
Slurm user, whose job then died after 30 s; rather than follow either reading, we ask for the
unit. Accepted (`seconds`): units (`45s`, `30m`, `2h`, `1d`, combined largest first as
`1h30m`), `H:MM:SS`, and Slurm's day forms `D-HH[:MM[:SS]]`, which the day makes unambiguous.
`A:B` is refused too: Slurm reads it as minutes:seconds, most people as hours:minutes.

Slurm's own syntax (`slurm_seconds`, for `#SBATCH --time` lines only) keeps Slurm's rule, since
that is what the line's author meant: a bare number is minutes, `MM:SS`, `HH:MM:SS`,
`D-HH[:MM[:SS]]`. Pure: text in, whole seconds out, ValueError with the reason otherwise.
"""

from __future__ import annotations

import re

_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_UNITS = re.compile(r"(?:\d+[dhms])+")
_PART = re.compile(r"(\d+)([dhms])")
_DAYS = re.compile(r"(\d+)-(\d+)(?::(\d+))?(?::(\d+))?")
_CLOCK = re.compile(r"\d+(?::\d+){1,2}")
_NO_LIMIT = frozenset({"unlimited", "infinite", "-1", "0"})
FORMS = "30m, 2h, 1h30m, 1d or 1:30:00"


class DurationError(ValueError):
    """A duration that cannot be read, or could be read two ways; the message says which."""


def seconds(text: str) -> int:
    """Our rule: a duration with its unit → whole seconds (module docstring)."""
    text = text.strip()
    if text.isdigit():
        raise DurationError(f"{text} is ambiguous: write {text}s, {text}m or {text}h")
    if _UNITS.fullmatch(text):
        return _with_units(text)
    if _DAYS.fullmatch(text):
        return _days(text)
    if _CLOCK.fullmatch(text):
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 2:
            hours, minutes = text.split(":")
            raise DurationError(
                f"{text} is ambiguous (hours:minutes, or Slurm's minutes:seconds): "
                f"write {hours}:{minutes}:00 or {int(hours)}m{minutes}s"
            )
        return _clock(parts)
    raise DurationError(f"{text!r} is not a duration: write e.g. {FORMS}")


def slurm_seconds(text: str) -> int:
    """Slurm's `--time` syntax → whole seconds: a bare number is minutes, as sbatch reads it."""
    text = text.strip()
    if text.lower() in _NO_LIMIT:
        raise DurationError(f"{text} means no time limit in Slurm: every job here has one")
    if text.isdigit():
        return int(text) * 60
    if _DAYS.fullmatch(text):
        return _days(text)
    if _CLOCK.fullmatch(text):
        parts = [int(p) for p in text.split(":")]
        return _clock(parts)  # MM:SS or HH:MM:SS
    raise DurationError(f"{text!r} is not a Slurm time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")


def _with_units(text: str) -> int:
    """'1h30m' → 5400: each unit at most once, the largest first, as a clock reads."""
    parts = _PART.findall(text)
    units = [unit for _, unit in parts]
    if units != sorted(set(units), key=list(_UNIT_S).index):
        raise DurationError(f"{text!r}: give each unit once, largest first (e.g. 1h30m)")
    return sum(int(count) * _UNIT_S[unit] for count, unit in parts)


def _days(text: str) -> int:
    """D-HH, D-HH:MM or D-HH:MM:SS (Slurm's forms with days)."""
    found = _DAYS.fullmatch(text)
    assert found is not None  # the caller matched it
    days, hours, minutes, secs = (int(g) if g else 0 for g in found.groups())
    return days * 86400 + _clock([hours, minutes, secs])


def _clock(parts: list[int]) -> int:
    """[hours,] minutes, seconds → seconds. Only the first part may pass 59 (90:00 is 90
    minutes); a later one of 60 or more is a typo."""
    total = 0
    for position, part in enumerate(parts):
        if position and part >= 60:
            shown = ":".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts))
            raise DurationError(f"{shown}: minutes and seconds go up to 59")
        total = total * 60 + part
    return total
