"""Python environments: what a researcher's requirements file may say, and the key an
environment is known by. Pure.

An environment is built from the facility's package registry only (`Settings.package_index`),
so a requirements file names packages and versions and nothing else: no option lines (another
index, another file, an editable checkout), no URL and no local path. What it says is kept in
one canonical form (`parse_requirements`), and the environment's key is a digest of that form
with everything else that decides what gets installed (`environment_key`): two projects that ask
for the same thing get the same key, and the facility builds it once.

Words: a *requirement* is one canonical line (`numpy>=1.26`, `torch[cuda]==2.3; ...`); the
*key* is the environment's name on disk (32 hex digits).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MAX_REQUIREMENTS = 500
KEY_LENGTH = 32  # hex digits: 128 bits, no collision between environments in practice
KEY_FORMAT = 1  # bump when the way an environment is built changes what it holds
PYTHON = re.compile(r"3\.\d{1,2}")
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's rule: '#' at the start or after a blank
_URL_OR_PATH = re.compile(r"(://|^file:|^[.~/]|/|\\|\.(whl|zip|tar\.gz|tar\.bz2|tgz)$)")
_REGISTRY = "the facility's registry is set by its operators"


class RequirementsError(ValueError):
    """A requirements file the facility does not build from; `line` is where (1-based)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


def parse_requirements(text: str) -> tuple[str, ...]:
    """The canonical requirements of a requirements file, sorted and without duplicates."""
    found = {_canonical(line, number) for number, line in _logical_lines(text)}
    if not found:
        raise RequirementsError("no requirement: name at least one package, e.g. numpy>=1.26")
    if len(found) > MAX_REQUIREMENTS:
        raise RequirementsError(
            f"{len(found)} requirements: at most {MAX_REQUIREMENTS} are accepted "
            "(their own dependencies are installed without being named)"
        )
    return tuple(sorted(found))


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number of its first line, text) of each non-empty line, comments gone and lines that
    end in a backslash joined to the next, as pip reads them."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        joined, pending, first = (pending + line).strip(), "", start
        start = 0
        if joined:
            yield first, joined
    if pending.strip():
        yield start, pending.strip()


def _canonical(line: str, number: int) -> str:
    if line.startswith("-"):
        option = line.split()[0].split("=")[0]
        raise RequirementsError(
            f"option {option} is not accepted: {_REGISTRY}, and a requirements file names "
            "packages only (no other file, index, link or editable install)",
            number,
        )
    if " --" in line or "\t--" in line:
        raise RequirementsError(
            "options on a requirement line (--hash, --config-settings…) are not accepted",
            number,
        )
    requirement = _requirement(line, number)
    extras = ",".join(sorted(canonicalize_name(e) for e in requirement.extras))
    marker = f"; {requirement.marker}" if requirement.marker is not None else ""
    name = canonicalize_name(requirement.name)
    return f"{name}{f'[{extras}]' if extras else ''}{requirement.specifier}{marker}"


def _requirement(line: str, number: int) -> Requirement:
    if _URL_OR_PATH.search(line.split(";")[0]):  # pip would take `x.whl` or `a/b` as a file
        raise RequirementsError(_not_a_name(), number)
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise RequirementsError(f"not a requirement ({reason}): {line[:80]!r}", number) from None
    if requirement.url is not None:
        raise RequirementsError(_not_a_name(), number)
    return requirement


def _not_a_name() -> str:
    return (
        "URLs and local paths are not accepted: name a package and its versions "
        f"(e.g. numpy>=1.26); {_REGISTRY}"
    )


def environment_key(
    requirements: Sequence[str], *, python: str, platform: str, index: str | None
) -> str:
    """The environment's name on disk: a digest of everything that decides what is installed.

    - `requirements`: what was asked for (canonical lines; sorted and de-duplicated here too,
      so the order they come in never matters);
    - `python`: the Python it is made for ("3.11"): pip picks wheels and versions by it;
    - `platform`: the interpreter's platform (e.g. "linux-x86_64"): wheels are built for one;
    - `index`: the registry it comes from: the same name and version on another registry may
      be other code;
    - `KEY_FORMAT`: the way the facility builds, so a change to it never reuses an old build.
    """
    canonical = json.dumps(
        {
            "format": KEY_FORMAT,
            "requirements": sorted(set(requirements)),
            "python": python,
            "platform": platform,
            "index": index.rstrip("/") if index else None,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def parse_python(given: str) -> str:
    """A Python version as the facility offers them: major.minor ("3.11")."""
    version = given.strip()
    if PYTHON.fullmatch(version) is None:
        raise ValueError(f"{given!r} is not a Python version: give major.minor, e.g. 3.11")
    return version
