"""Single values as Slurm's tools print them, read into plain Python: pure functions, no I/O.

Words: a *duration* is Slurm's `[D-]HH:MM:SS` (also `MM:SS`, `D-HH`, fractions of a second as
in `00:03.294`); a *time* is `2026-11-26T18:44:35`, which the tools print in the local time of
their environment (the client runs them with TZ=UTC, so times here are read as UTC); *GRES* is a
generic resource list such as `gpu:h100:4(S:0-1),shard:8`; a *hostlist* is `n[1-3,07],login1`.
Each "nothing" spelling (`None`, `NONE`, `Unknown`, `N/A`, `(null)`, empty) reads as None.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

NOTHING = frozenset({"", "None", "NONE", "Unknown", "N/A", "n/a", "(null)", "None assigned", "n/s"})
UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "Partition_Limit", "NOT_SET", "INVALID"})
_MEMORY_UNITS = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_BYTE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def text_or_none(text: str) -> str | None:
    text = text.strip()
    return None if text in NOTHING else text


def parse_time(text: str) -> float | None:
    """`2026-11-26T18:44:35` (UTC) → UNIX seconds; `Unknown`, `None`, `N/A` → None."""
    text = text.strip()
    if text in NOTHING:
        return None
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


def format_time(seconds: float) -> str:
    """UNIX seconds → `2026-11-26T18:44:35` in UTC, as the tools take it (sacct -S, …)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


_DURATION = re.compile(r"^(?:(?P<days>\d+)-)?(?P<rest>\d+(?::\d+){0,2})(?P<frac>\.\d+)?$")


def parse_duration(text: str) -> float | None:
    """Slurm's duration forms → seconds; `UNLIMITED` and the "nothing" spellings → None.

    As Slurm reads them: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`; a fraction of a second
    (sacct's TotalCPU, `00:03.294`) is kept.
    """
    text = text.strip()
    if text in NOTHING or text in UNLIMITED:
        return None
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"not a Slurm duration: {text!r}")
    parts = [int(p) for p in found["rest"].split(":")]
    if found["days"] is not None:
        hours, minutes, seconds = [*parts, 0, 0][:3]
        total = int(found["days"]) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif len(parts) == 1:
        total = parts[0] * 60
    elif len(parts) == 2:
        total = parts[0] * 60 + parts[1]
    else:
        total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return total + (float(found["frac"]) if found["frac"] else 0.0)


def parse_seconds(text: str) -> int | None:
    """A duration in whole seconds (time limits, elapsed times)."""
    value = parse_duration(text)
    return None if value is None else int(value)


def format_duration(seconds: int) -> str:
    """Seconds → Slurm's own form (`1-02:03:04`, `2:03:04`, `3:04`), which `--time` takes."""
    if seconds < 0:
        raise ValueError("a duration is never negative")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def parse_memory_mb(text: str, unit: str = "M") -> float | None:
    """`16000M`, `2G`, `219612K`, `1.50G` → MiB; a bare number is in `unit` (MiB by default)."""
    text = text.strip()
    if text in NOTHING:
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)[cn]?", text)
    if found is None:
        raise ValueError(f"not a Slurm memory size: {text!r}")
    return float(found[1]) * _MEMORY_UNITS[found[2] or unit]


def parse_bytes(text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)", text.strip())
    if found is None:
        raise ValueError(f"not a byte count: {text!r}")
    return float(found[1]) * _BYTE_UNITS[found[2]]


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a job's script ended: its exit code, or the signal that killed it (0: none)."""

    code: int
    signal: int = 0

    @property
    def returncode(self) -> int:
        """As Python's subprocess reports it: the code, or minus the signal."""
        return -self.signal if self.signal else self.code

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        """squeue's `exit_code` is the raw wait status: `768` is code 3, `9` is SIGKILL."""
        return cls(code=(status >> 8) & 0xFF, signal=status & 0x7F)


def parse_exit(text: str) -> ExitStatus | None:
    """`code:signal` as sacct and scontrol print it: `0:0`, `1:0`, `0:15`."""
    text = text.strip()
    if text in NOTHING:
        return None
    code, _, sig = text.partition(":")
    return ExitStatus(int(code), int(sig or 0))


@dataclass(frozen=True, slots=True)
class Gres:
    """One generic resource: `gpu:h100:4(S:0-1)` is name gpu, type h100, count 4."""

    name: str
    type: str | None
    count: int
    indices: tuple[int, ...] = ()  # `(IDX:0-1)` in scontrol -d's GresUsed and job GRES


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and parentheses (`n[1,3],m1` → `n[1,3]`, `m1`)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    parts.append(text[start:])
    return [p for p in (part.strip() for part in parts) if p]


def parse_gres(text: str) -> list[Gres]:
    """`gpu:h100:4(S:0),shard:8`, `gpu:4`, `gres:gpu:2`, `gres/gpu=2` → Gres entries."""
    if text.strip() in NOTHING:
        return []
    return [_one_gres(item) for item in split_top_level(text.strip())]


def _one_gres(item: str) -> Gres:
    item = item.removeprefix("gres:").removeprefix("gres/")
    body, _, detail = item.partition("(")
    if "=" in body:  # the TRES spelling: gpu:h100=2
        body = body.replace("=", ":")
    fields = body.split(":")
    count = 1
    if fields[-1].isdigit():
        count = int(fields.pop())
    indices: tuple[int, ...] = ()
    found = re.search(r"IDX:([\d,\-]+)", detail)
    if found:
        indices = tuple(expand_numbers(found[1]))
    kind = fields[1] if len(fields) > 1 and fields[1] else None
    return Gres(name=fields[0], type=kind, count=count, indices=indices)


def gpus_by_model(entries: list[Gres]) -> dict[str | None, int]:
    """GPU counts by model (None: GPUs declared without a type)."""
    counts: dict[str | None, int] = {}
    for entry in entries:
        if entry.name == "gpu":
            counts[entry.type] = counts.get(entry.type, 0) + entry.count
    return counts


def expand_numbers(text: str) -> list[int]:
    """`0-1,3` → [0, 1, 3]."""
    numbers: list[int] = []
    for part in split_top_level(text):
        low, _, high = part.partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return numbers


def expand_hostlist(text: str) -> list[str]:
    """`n[1-3,07],login1` → n1, n2, n3, n07, login1 (zero padding kept); nothing → []."""
    if text.strip() in NOTHING:
        return []
    hosts: list[str] = []
    for item in split_top_level(text.strip()):
        hosts.extend(_expand_one(item))
    return hosts


def _expand_one(item: str) -> list[str]:
    found = re.search(r"\[([^\]]*)\]", item)
    if found is None:
        return [item]
    head, tail = item[: found.start()], item[found.end() :]
    names: list[str] = []
    for part in split_top_level(found[1]):
        low, _, high = part.partition("-")
        width = len(low)
        for number in range(int(low), int(high or low) + 1):
            names.extend(head + str(number).zfill(width) + rest for rest in _expand_one(tail))
    return names


def parse_tres(text: str) -> dict[str, float]:
    """`cpu=2,mem=2G,node=1,billing=2,gres/gpu=2` → {"cpu": 2, "mem": 2048 (MiB), …}.

    In sacct's usage (TRESUsageInTot) `cpu` is CPU time (`00:00:02` → seconds), `mem` and `vmem`
    are sizes (→ MiB), `fs/disk` is bytes; other values are plain numbers.
    """
    if text.strip() in NOTHING:
        return {}
    values: dict[str, float] = {}
    for item in split_top_level(text.strip()):
        key, _, raw = item.partition("=")
        values[key] = _tres_value(key, raw)
    return values


def _tres_value(key: str, raw: str) -> float:
    if ":" in raw:
        seconds = parse_duration(raw)
        return 0.0 if seconds is None else seconds
    if key in ("mem", "vmem"):
        size = parse_memory_mb(raw)
        return 0.0 if size is None else size
    if key == "fs/disk" or key.startswith("fs/"):
        return parse_bytes(raw)
    return float(raw)


_KEY = re.compile(r"\s+(?=[A-Za-z][\w:/]*=)")


def parse_key_values(line: str) -> dict[str, str]:
    """One line of `scontrol show … -o`: `Key=value Key2=a value with spaces` → a dict.

    A value runs to the next ` Word=`; a key seen twice keeps its first value (scontrol -d
    repeats per-node keys, which `parse_job_allocations` reads).
    """
    fields: dict[str, str] = {}
    for token in _KEY.split(line.strip()):
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value.strip()
    return fields


def pick(fields: Mapping[str, str], key: str) -> str:
    return fields.get(key, "")
