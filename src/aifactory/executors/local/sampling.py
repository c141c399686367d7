"""Sampling what one attempt uses while it runs: its processes' resident memory and CPU time,
and its GPUs' utilisation and memory (through a `GpuReader`: NVML on a real node, a fake in
tests, nothing for virtual GPUs).

The supervisor calls `Sampler.take` every `SAMPLE_S` with the attempt's processes; `figures()`
is what it adds to the attempt's usage record (exit.json), each figure only when it was
measured at least once, so a reader can tell "not measured" from zero:
- `peak_rss_mb`: the most resident memory the processes held together at one sample (a peak
  shorter than the sampling interval can be missed: it is a sampled figure, as Slurm's MaxRSS);
- `cpu_time_s`: the CPU time they used, own and of their children they reaped (the control
  group's exact counter, where there is one, replaces it);
- `gpu_utilisation_pct`: the mean, over the samples, of the mean busy share of its GPUs;
- `peak_gpu_memory_mb`: the most memory any one of its GPUs held at one sample (a job holds
  its GPUs alone, so a GPU's memory in use is the job's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import psutil

SAMPLE_S = 0.5
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU at one instant: how busy it was over the driver's last period, memory in use."""

    utilisation_pct: float
    memory_used_mb: float


class GpuReader(Protocol):
    def read(self) -> list[GpuReading]:
        """The attempt's GPUs now; none when they cannot be read."""
        ...

    def close(self) -> None: ...


class NoGpus:
    """The reader of an attempt with no GPU NVML can read (none, or virtual ones)."""

    def read(self) -> list[GpuReading]:
        return []

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ProcessReading:
    rss_mb: float
    cpu_time_s: float


class Sampler:
    def __init__(self, gpus: GpuReader) -> None:
        self.gpus = gpus
        self.latest_rss_mb = 0.0
        self._peak_rss_mb: float | None = None
        self._cpu_time_s: float | None = None
        self._gpu_pct_sum = 0.0
        self._gpu_samples = 0
        self._peak_gpu_mb: float | None = None

    def take(self, pids: Iterable[int]) -> None:
        """One sample of the attempt's processes (those gone already are skipped) and GPUs."""
        found = read_processes(pids)
        self.latest_rss_mb = found.rss_mb if found is not None else 0.0
        if found is not None:
            self._peak_rss_mb = max(self._peak_rss_mb or 0.0, found.rss_mb)
            self._cpu_time_s = max(self._cpu_time_s or 0.0, found.cpu_time_s)
        self._take_gpus(self.gpus.read())

    def _take_gpus(self, readings: Sequence[GpuReading]) -> None:
        if not readings:
            return
        self._gpu_pct_sum += sum(r.utilisation_pct for r in readings) / len(readings)
        self._gpu_samples += 1
        peak = max(r.memory_used_mb for r in readings)
        self._peak_gpu_mb = max(self._peak_gpu_mb or 0.0, peak)

    def add_cpu_time(self, cpu_time_s: float) -> None:
        """A CPU time known otherwise (the processes reaped once the attempt ended): the larger
        of the two is kept, as no sample can count more than was used."""
        self._cpu_time_s = max(self._cpu_time_s or 0.0, cpu_time_s)

    def figures(self) -> dict[str, float]:
        found = {
            "peak_rss_mb": self._peak_rss_mb,
            "cpu_time_s": self._cpu_time_s,
            "peak_gpu_memory_mb": self._peak_gpu_mb,
        }
        if self._gpu_samples:
            found["gpu_utilisation_pct"] = self._gpu_pct_sum / self._gpu_samples
            found["gpu_samples"] = float(self._gpu_samples)
        return {key: value for key, value in found.items() if value is not None}


def read_processes(pids: Iterable[int]) -> ProcessReading | None:
    """Their resident memory and CPU time together; None when none of them could be read.
    CPU time counts each process's own and that of the children it reaped (which are no longer
    among `pids`), so a finished child's work is not lost between samples."""
    rss = cpu = 0.0
    read = False
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                memory, times = proc.memory_info(), proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        read = True
        rss += memory.rss / MB
        cpu += times.user + times.system + times.children_user + times.children_system
    return ProcessReading(rss, cpu) if read else None


def tree(pid: int) -> list[int]:
    """`pid` and every process below it (none when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root.pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []
