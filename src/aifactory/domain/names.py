"""Names: what users, organisations, projects, programmes, calls, datasets, sites and API tokens
are called. One rule for every name, checked by one type at the API (`api.schemas.Name`) and by
the services that take names from elsewhere.

The rule: 1 to 64 ASCII letters, digits, '.', '_' or '-', beginning with a letter or digit.
ASCII only, because a name is read by people and typed into shells, URLs and Slurm: a Greek or
Cyrillic capital that looks like a Latin one ("ΑΒΕ" beside "ABE") would give two names that
read the same and are not. A dataset's name is also in lower case: it becomes part of an
environment variable's name, where case is lost.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PATTERN = f"^{NAME.pattern}$"  # the same rule in the API's schema (JSON Schema regex)
LOWER_CASE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
RULE = "1 to 64 ASCII letters, digits, '.', '_' or '-', beginning with a letter or digit"


def name_problem(value: str, *, lower_case: bool = False) -> str | None:
    """Why `value` cannot be a name, or None when it can."""
    if not NAME.fullmatch(value):
        return f"must be {RULE}"
    if lower_case and value != value.lower():
        return "must be in lower case"
    return None


def check_name(value: str) -> str:
    """`value`, if it is a name; else ValueError with the reason (for validators)."""
    if problem := name_problem(value):
        raise ValueError(problem)
    return value


def check_lower_case_name(value: str) -> str:
    if problem := name_problem(value, lower_case=True):
        raise ValueError(problem)
    return value
