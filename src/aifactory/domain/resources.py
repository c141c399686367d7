"""One resource type for everything that is asked for, offered or used.

A `Resources` value is an amount of GPUs, CPUs and memory; it adds, subtracts and compares
component-wise, so "does this fit?" is always `need <= free`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resources:
    gpus: int = 0
    cpus: int = 0
    memory_mb: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.gpus + other.gpus, self.cpus + other.cpus, self.memory_mb + other.memory_mb
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.gpus - other.gpus, self.cpus - other.cpus, self.memory_mb - other.memory_mb
        )

    def __le__(self, other: Resources) -> bool:
        return (
            self.gpus <= other.gpus
            and self.cpus <= other.cpus
            and self.memory_mb <= other.memory_mb
        )

    def __ge__(self, other: Resources) -> bool:
        return other <= self
