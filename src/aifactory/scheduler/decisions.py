"""What the scheduler tells the control loop to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aifactory.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class Start:
    """Start `job_id` now, with `placement` giving the resources it takes on each node."""

    job_id: int
    placement: Mapping[str, Resources]


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Hold:
    job_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Release:
    """A held job may wait in line again: what held it is mended."""

    job_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """A waiting job that can never run (a dependency ended the wrong way): end it, saying why."""

    job_id: int
    reason: str


Decision = Start | Preempt | Hold | Release | Cancel
