"""The local executor: jobs as real subprocesses on this machine.

Each attempt at a job gets a directory, `<data dir>/jobs/<id>/attempt-<n>/` (see `jobdir`), and
a detached supervisor process (`supervisor.py`). Everything the executor knows it reads back
from those directories, so a restarted control plane sees exactly what the last one left.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from aifactory.domain.jobfiles import checkpoint_dir, contract_env
from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import Attempt, Launch, NodeOffer, Observation, Outcome, Phase
from aifactory.executors.local import gpus
from aifactory.executors.local.jobdir import JobDir, read_json, write_json


@dataclass(frozen=True, slots=True)
class LocalConfig:
    jobs_dir: Path
    site: str = "NL"
    virtual_gpus: int | None = None  # None: discover with NVML
    cpus: int | None = None  # None: the CPUs this process may use
    memory_mb: int | None = None  # None: the machine's memory
    grace_s: float = 10.0
    node_id: str | None = None


class LocalExecutor:
    name = "local"
    capabilities = frozenset({"gpu_isolation", "cpu_affinity", "memory_watchdog", "energy"})

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.node_id = config.node_id or socket.gethostname()
        self._children: dict[Attempt, subprocess.Popen[bytes]] = {}
        config.jobs_dir.mkdir(parents=True, exist_ok=True)

    def foreign_load(self) -> Mapping[str, Resources]:
        """This machine runs only what the facility starts (its other load is not tracked)."""
        return {}

    def inventory(self) -> list[NodeOffer]:
        gpu_ids, model = self._gpus()
        cpus = self.config.cpus or len(os.sched_getaffinity(0))
        memory_mb = self.config.memory_mb or psutil.virtual_memory().total // (1024 * 1024)
        node = Node(
            id=self.node_id,
            site=self.config.site,
            gpu_model=model,
            capacity=Resources(len(gpu_ids), cpus, int(memory_mb)),
        )
        return [NodeOffer(node, gpu_ids)]

    def _gpus(self) -> tuple[list[str], str | None]:
        if self.config.virtual_gpus is not None:
            count = self.config.virtual_gpus
            return [str(i) for i in range(count)], ("virtual" if count else None)
        found = gpus.discover()
        return [g.uuid for g in found], (found[0].model if found else None)

    def home(self, job_id: int) -> Path:
        """The job's own directory: its default working directory, shared by its attempts."""
        return self.config.jobs_dir / str(job_id)

    def jobdir(self, attempt: Attempt) -> JobDir:
        home = self.home(attempt.job_id)
        own = JobDir(home / f"attempt-{attempt.number}")
        if attempt.number == 1 and not own.root.exists() and JobDir(home).launch.exists():
            return JobDir(home)  # started before attempts had directories of their own
        return own

    def log_path(self, job_id: int) -> Path:
        """The latest attempt's log; earlier attempts keep theirs in their own directories."""
        numbers = (p.name.removeprefix("attempt-") for p in self.home(job_id).glob("attempt-*"))
        latest = max((int(n) for n in numbers if n.isdigit()), default=1)
        return self.jobdir(Attempt(job_id, latest)).log

    def start(self, launch: Launch) -> None:
        jobdir = self.jobdir(launch.attempt)
        jobdir.root.mkdir(parents=True, exist_ok=True)
        checkpoint_dir(self.home(launch.job_id)).mkdir(exist_ok=True)  # kept across attempts
        child = self._children.get(launch.attempt)
        if child is not None and child.poll() is None:
            return  # our supervisor for it is still running (it may not hold the lock yet)
        if jobdir.attempt.exists() or jobdir.exit.exists() or jobdir.supervisor_alive():
            return  # this attempt started once already: starting is idempotent
        write_json(jobdir.launch, self._launch_record(launch))
        with open(jobdir.root / "supervisor.err", "ab") as err:  # the child keeps its own copy
            self._children[launch.attempt] = subprocess.Popen(
                [sys.executable, "-m", "aifactory.executors.local.supervisor", str(jobdir.root)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                env=_supervisor_env(),  # a job can read its parent's environment in /proc
            )

    def _launch_record(self, launch: Launch) -> dict[str, object]:
        (node_slice,) = launch.placement.values()  # the local executor has one node
        real_cpus = sorted(os.sched_getaffinity(0))
        affinity = sorted({real_cpus[i % len(real_cpus)] for i in node_slice.cpu_ids})
        base = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith("LC_")}
        env = {
            **base,
            **launch.env,
            **_device_env(launch.attempt, node_slice.gpu_ids),
            **contract_env(self.home(launch.job_id), self.config.grace_s),
        }
        return {
            "job_id": launch.job_id,
            "attempt": launch.attempt.number,
            "command": list(launch.command),
            "env": env,
            "working_dir": launch.working_dir or str(self.home(launch.job_id)),
            "time_limit_s": launch.time_limit_s,
            "grace_s": self.config.grace_s,
            "gpu_ids": node_slice.gpu_ids,
            "cpu_affinity": affinity,
            "memory_mb": node_slice.memory_mb,
        }

    def poll(self, attempts: Iterable[Attempt]) -> dict[Attempt, Observation]:
        self._reap()
        return {attempt: self._observe(attempt) for attempt in attempts}

    def _observe(self, attempt: Attempt) -> Observation:
        jobdir = self.jobdir(attempt)
        alive = jobdir.supervisor_alive() or attempt in self._children
        done = read_json(jobdir.exit)  # read after the probe: a supervisor writes, then exits
        if done is not None:
            return _exited(done)
        started = read_json(jobdir.started)
        if started is not None:
            if alive:
                return Observation(Phase.RUNNING, started_at=float(started["started_at"]))
            return Observation(Phase.LOST, reason="the job's supervisor disappeared")
        if alive:
            return Observation(Phase.STARTING)
        if jobdir.attempt.exists():
            return Observation(Phase.LOST, reason="the supervisor died while starting the job")
        return Observation(Phase.NOT_STARTED)

    def _reap(self) -> None:
        for attempt, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[attempt]

    def cancel(self, attempt: Attempt) -> None:
        self._ask(self.jobdir(attempt).cancel)

    def preempt(self, attempt: Attempt) -> None:
        self._ask(self.jobdir(attempt).preempt)

    def _ask(self, marker: Path) -> None:
        """Leave a stop marker the attempt's supervisor acts on within its poll interval, or
        at its start if it has not started yet (then the command never runs)."""
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


# What a job inherits from the control plane's environment: never its secrets (tokens, DB URLs).
_INHERITED_ENV = frozenset(
    {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM"}
)


def _supervisor_env() -> dict[str, str]:
    """What the supervisor needs to import aifactory, and nothing secret."""
    keep = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith("LC_")}
    if "PYTHONPATH" in os.environ:
        keep["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return keep


def _device_env(attempt: Attempt, gpu_ids: list[str]) -> dict[str, str]:
    visible = ",".join(gpu_ids)
    return {
        "CUDA_VISIBLE_DEVICES": visible,
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "AIFACTORY_JOB_ID": str(attempt.job_id),
        "AIFACTORY_ATTEMPT": str(attempt.number),  # above 1: resuming after a preemption
        "AIFACTORY_GPU_IDS": visible,
        "PYTHONUNBUFFERED": "1",
    }


def _exited(record: dict[str, object]) -> Observation:
    usage = record.get("usage") or {}
    assert isinstance(usage, dict)
    code = record.get("exit_code")
    return Observation(
        Phase.EXITED,
        started_at=_float(record.get("started_at")),
        ended_at=_float(record.get("ended_at")),
        exit_code=int(code) if isinstance(code, int) else None,
        outcome=Outcome(str(record["outcome"])),
        reason=str(record.get("reason") or ""),
        usage={str(k): float(v) for k, v in usage.items()},
    )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
