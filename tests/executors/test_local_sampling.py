"""What the local executor samples of an attempt while it runs (executors.local.sampling): real
jobs in their sandbox for memory and CPU time, a fake GPU reader (and a stand-in for the NVML
module) for the GPU figures, since CI has no GPU."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from aifactory.executors.base import Observation, Outcome
from aifactory.executors.local import gpus
from aifactory.executors.local.executor import LocalExecutor
from aifactory.executors.local.sampling import GpuReading, NoGpus, Sampler, read_processes
from tests.executors.jobs import MB, duration_s, launch, python, run_to_exit

HOLD_200_MB = (
    "import time\n"
    f"hog = bytearray({200 * MB})\n"  # zero-filled: every page is resident
    "time.sleep(2.5)\n"
)
BUSY = "import time\nwhile time.process_time() < 2.0: pass\n"  # 2 s of CPU, however long
SLEEPING = "import time\ntime.sleep(2.5)\n"


def cpu_share(done: Observation) -> float:
    """CPU time over wall time: the efficiency of a job given one CPU."""
    return done.usage["cpu_time_s"] / duration_s(done)


def assert_busy(done: Observation) -> None:
    """Its 2 s of CPU counted (and the interpreter's start), and most of its wall time busy:
    not all of it on a test machine whose two CPUs other tests share."""
    assert done.outcome is Outcome.SUCCEEDED
    assert 2.0 <= done.usage["cpu_time_s"] <= 2.5, done.usage
    assert cpu_share(done) >= 0.5, done.usage


def test_a_job_that_holds_200_mb_reports_a_peak_of_about_200_mb(executor: LocalExecutor) -> None:
    done = run_to_exit(executor, launch(1, python(HOLD_200_MB), memory_mb=1024))
    assert done.outcome is Outcome.SUCCEEDED
    # 200 MB of its own, plus the interpreter (about 10 MB) and bubblewrap's few
    assert 200 <= done.usage["peak_rss_mb"] <= 240, done.usage


def test_a_busy_job_uses_its_cpu_and_a_sleeping_one_does_not(executor: LocalExecutor) -> None:
    assert_busy(run_to_exit(executor, launch(1, python(BUSY))))
    sleeping = run_to_exit(executor, launch(2, python(SLEEPING)))
    assert sleeping.outcome is Outcome.SUCCEEDED
    assert cpu_share(sleeping) <= 0.1, sleeping.usage


def test_without_a_control_group_the_samples_still_measure_it(
    make_executor: Callable[..., LocalExecutor],
) -> None:
    """The watchdog's path (a facility not running as root has no control group): CPU time
    from the samples and from the reaped processes, memory from the samples alone."""
    executor = make_executor(sandboxed=False)
    held = run_to_exit(executor, launch(1, python(HOLD_200_MB), memory_mb=1024))
    assert 200 <= held.usage["peak_rss_mb"] <= 240, held.usage
    assert "peak_memory_mb" not in held.usage  # that one is the control group's
    assert_busy(run_to_exit(executor, launch(2, python(BUSY))))


def test_a_job_on_virtual_gpus_has_no_gpu_figures(executor: LocalExecutor) -> None:
    done = run_to_exit(executor, launch(1, python(SLEEPING), gpu_ids=["0", "1"]))
    assert "gpu_utilisation_pct" not in done.usage
    assert "peak_gpu_memory_mb" not in done.usage


# ---- the sampler, with a fake GPU reader ---------------------------------------------------


@dataclass
class FakeGpus:
    """Plays the attempt's GPUs: each read gives the next instant's readings."""

    instants: list[list[GpuReading]]
    closed: bool = False

    def read(self) -> list[GpuReading]:
        return self.instants.pop(0) if self.instants else []

    def close(self) -> None:
        self.closed = True


def test_gpu_utilisation_is_the_mean_over_samples_and_memory_the_peak_of_any_gpu() -> None:
    fake = FakeGpus(
        [
            [GpuReading(100, 30_000), GpuReading(80, 20_000)],
            [GpuReading(40, 50_000), GpuReading(0, 10_000)],
            [],  # unreadable at that instant: not a sample
        ]
    )
    sampler = Sampler(fake)
    for _ in range(3):
        sampler.take([])
    figures = sampler.figures()
    assert figures["gpu_utilisation_pct"] == pytest.approx((90 + 20) / 2)
    assert figures["peak_gpu_memory_mb"] == 50_000
    assert figures["gpu_samples"] == 2


def test_nothing_read_is_not_measured_rather_than_zero() -> None:
    sampler = Sampler(NoGpus())
    sampler.take([])  # no process of it could be read
    assert sampler.figures() == {}
    assert sampler.latest_rss_mb == 0


def test_processes_are_read_together_and_gone_ones_skipped() -> None:
    found = read_processes([os.getpid(), 2**22 + 1])  # this one, and one that does not exist
    assert found is not None
    assert found.rss_mb > 10
    assert found.cpu_time_s > 0
    assert read_processes([2**22 + 1]) is None


def test_cpu_time_known_after_the_end_counts_when_larger() -> None:
    sampler = Sampler(NoGpus())
    sampler.take([os.getpid()])
    sampled = sampler.figures()["cpu_time_s"]
    sampler.add_cpu_time(0.0)
    assert sampler.figures()["cpu_time_s"] == sampled
    sampler.add_cpu_time(sampled + 5)
    assert sampler.figures()["cpu_time_s"] == sampled + 5


# ---- the NVML adapter, over a stand-in for the pynvml module -------------------------------


class NVMLError(Exception):
    pass


def fake_nvml(devices: dict[str, tuple[int, int] | None]) -> Any:
    """pynvml's calls the reader makes; a device mapped to None fails to read, as NVML does
    for a GPU that fell off the bus."""
    shut: list[bool] = []

    def utilisation(handle: str) -> SimpleNamespace:
        found = devices[handle]
        if found is None:
            raise NVMLError("GPU is lost")
        return SimpleNamespace(gpu=found[0], memory=0)

    def memory(handle: str) -> SimpleNamespace:
        found = devices[handle]
        assert found is not None
        return SimpleNamespace(used=found[1] * MB, total=80_000 * MB, free=0)

    return SimpleNamespace(
        NVMLError=NVMLError,
        nvmlDeviceGetUtilizationRates=utilisation,
        nvmlDeviceGetMemoryInfo=memory,
        nvmlShutdown=lambda: shut.append(True),
        shut=shut,
    )


def test_the_nvml_reader_reads_each_gpu_and_leaves_out_one_it_cannot() -> None:
    nvml = fake_nvml({"a": (97, 41_000), "b": None, "c": (12, 3_000)})
    reader = gpus.NvmlReader(nvml, ["a", "b", "c"])
    assert reader.read() == [GpuReading(97.0, 41_000.0), GpuReading(12.0, 3_000.0)]
    reader.close()
    assert nvml.shut == [True]


def test_no_real_gpu_means_a_reader_that_reads_nothing() -> None:
    assert isinstance(gpus.reader([]), NoGpus)
