"""The local executor: jobs as real, sandboxed processes on this machine.

Each job has a directory, `<jobs dir>/<id>/`, that belongs to the facility: in it the job's own
directory `work/` (its HOME and default working directory, with its checkpoints and progress
file; owned by the project's identity, the only part the job sees) and, per attempt,
`attempt-<n>/` (see `jobdir`) with the supervisor's records, the log and the attempt's /tmp.
A detached supervisor process (`supervisor.py`) runs each attempt in its sandbox
(executors.sandbox): bubblewrap's, or for a job in an image the OCI runtime's
(`sandbox.container`), under the same rules. A job in a ready Python environment runs in
bubblewrap's, with the environment mounted read-only at its own path. Everything the executor
knows it reads back from those directories, so a restarted control plane sees exactly what the
last one left.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from aifactory.domain.jobfiles import checkpoint_dir, contract_env, own_files, work_dir
from aifactory.domain.jobs import Network
from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import Attempt, Launch, NodeOffer, Observation, Outcome, Phase
from aifactory.executors.local import gpus
from aifactory.executors.local.enter import Shell, open_shell
from aifactory.executors.local.jobdir import JobDir, read_json, write_json
from aifactory.executors.sandbox import cgroups, environment
from aifactory.executors.sandbox.container import TINI, find_runtime
from aifactory.executors.sandbox.identity import (
    Identities,
    Identity,
    IdentityConfig,
    IdentityError,
)
from aifactory.executors.sandbox.image import ImageError, read_image
from aifactory.executors.sandbox.job import JobPaths, job_sandbox
from aifactory.executors.sandbox.paths import overlaps
from aifactory.executors.sandbox.software import host_software
from aifactory.executors.sandbox.spec import Access, Mount, to_record


@dataclass(frozen=True, slots=True)
class LocalConfig:
    jobs_dir: Path
    site: str = "NL"
    virtual_gpus: int | None = None  # None: discover with NVML
    cpus: int | None = None  # None: the CPUs this process may use
    memory_mb: int | None = None  # None: the machine's memory
    grace_s: float = 10.0
    node_id: str | None = None
    identities: IdentityConfig = field(default_factory=IdentityConfig.for_this_process)
    software: Sequence[Path] = ()  # more read-only software for jobs (e.g. /opt/cuda)
    # Where a working directory a job names may lie (besides the jobs directory, where its
    # project's other jobs' directories are): the operators' project areas, e.g. /projects.
    workdir_roots: Sequence[Path] = ()
    protected: Sequence[Path] = ()  # the facility's secrets besides jobs_dir (data dir, config)
    open_network: bool = False  # may a job ask for network "open"
    pids_max: int = 8192  # tasks (processes and threads) per attempt
    # Test seam: a directory of `nvidia<i>` files that stand for virtual GPU i's device node.
    virtual_gpu_devices: Path | None = None
    # False only for benchmarks/sandbox_start.py's baseline: no setting of the facility turns
    # the sandbox off.
    sandboxed: bool = True
    container_runtime: Path | None = None  # runs jobs in images (None: runc, else crun)


class LocalExecutor:
    name = "local"
    capabilities = frozenset({"gpu_isolation", "cpu_affinity", "memory_limit", "energy", "sandbox"})

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.node_id = config.node_id or socket.gethostname()
        self._children: dict[Attempt, subprocess.Popen[bytes]] = {}
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
        config.jobs_dir.chmod(0o700)
        self.protected = [config.jobs_dir.resolve(), *(p.resolve() for p in config.protected)]
        self.software = host_software(config.software, protected=self.protected)
        self.identities = Identities(config.identities)
        roots = [config.jobs_dir, *config.workdir_roots]
        self.workdir_roots = [str(p.resolve()) for p in roots]
        self.cgroups = cgroups.detect()
        self.key = hashlib.sha256(str(config.jobs_dir.resolve()).encode()).hexdigest()[:10]
        self.runtime = find_runtime(config.container_runtime)

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
        """The job's directory (the facility's): its `work/` and its attempts' records."""
        return self.config.jobs_dir / str(job_id)

    def work(self, job_id: int) -> Path:
        """The job's own directory: HOME and default working directory, kept across attempts."""
        return work_dir(self.home(job_id))

    def identity(self, project_id: int | None, project: str | None = None) -> Identity:
        """Who a project's jobs run as (made the first time: see executors.sandbox.identity)."""
        return self.identities.of(project_id or 0, project)

    def jobdir(self, attempt: Attempt) -> JobDir:
        home = self.home(attempt.job_id)
        own = JobDir(home / f"attempt-{attempt.number}")
        if attempt.number == 1 and not own.root.exists() and JobDir(home).launch.exists():
            return JobDir(home)  # started before attempts had directories of their own
        return own

    def open_shell(
        self, job_id: int, attempt: int, command: list[str], *, tty: bool, rows: int, cols: int
    ) -> Shell:
        """`command` in the running attempt's sandbox (executors.local.enter)."""
        return open_shell(
            self.jobdir(Attempt(job_id, attempt)), command, tty=tty, rows=rows, cols=cols
        )

    def served(self, job_id: int, attempt: int, socket: str) -> Path:  # noqa: ARG002
        # (every attempt of a job works in the same directory)
        """A job's own socket (a session's notebook server): in its directory, on this host."""
        return self.work(job_id) / socket

    def log_path(self, job_id: int) -> Path:
        """The latest attempt's log; earlier attempts keep theirs in their own directories."""
        numbers = (p.name.removeprefix("attempt-") for p in self.home(job_id).glob("attempt-*"))
        latest = max((int(n) for n in numbers if n.isdigit()), default=1)
        return self.jobdir(Attempt(job_id, latest)).log

    def start(self, launch: Launch) -> None:
        jobdir = self.jobdir(launch.attempt)
        _private_dir(self.home(launch.job_id))
        _private_dir(jobdir.root)
        child = self._children.get(launch.attempt)
        if child is not None and child.poll() is None:
            return  # our supervisor for it is still running (it may not hold the lock yet)
        if jobdir.attempt.exists() or jobdir.exit.exists() or jobdir.supervisor_alive():
            return  # this attempt started once already: starting is idempotent
        write_json(jobdir.launch, self._record_or_refusal(launch, jobdir))
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

    def _record_or_refusal(self, launch: Launch, jobdir: JobDir) -> dict[str, object]:
        """What the supervisor runs; a launch the sandbox cannot give (no identity, a network
        this facility does not allow) is recorded as refused, and its attempt fails so."""
        try:
            identity = self.identity(launch.project_id, launch.project)
            network = Network(launch.network)
        except (IdentityError, ValueError) as exc:
            return self._refused(launch, f"no sandbox for this job: {exc}")
        if network is Network.OPEN and not self.config.open_network:
            return self._refused(launch, "this facility gives jobs no network (network: none)")
        refusal = self._software_refusal(launch)
        if refusal is not None:
            return self._refused(launch, refusal)
        self._prepare(launch, jobdir, identity)
        return self._launch_record(launch, jobdir, identity, network)

    def _refused(self, launch: Launch, reason: str) -> dict[str, object]:
        return {"job_id": launch.job_id, "attempt": launch.attempt.number, "refused": reason}

    def _software_refusal(self, launch: Launch) -> str | None:
        """Why the job's image or environment cannot be given here, if it cannot."""
        if launch.image is not None and launch.environment is not None:
            return "a job runs in an image or in a Python environment, not both"
        if launch.environment is not None:
            record = environment.marker(launch.environment)
            if record is None:
                return f"the Python environment {launch.environment} is not ready (not built whole)"
            prefix = os.path.realpath(str(record.get("base_prefix") or "/"))
            if any(overlaps(prefix, str(p)) for p in self.protected):
                return f"the Python environment {launch.environment} names the facility's files"
        if launch.image is None:
            return None
        if os.geteuid() != 0:
            return "jobs in images need a facility that runs as root (the OCI runtime does)"
        if self.runtime is None or not os.access(self.runtime, os.X_OK):
            return (
                f"the OCI runtime {self.runtime or '(runc or crun)'} is not installed: jobs in "
                "images cannot run here (scripts/install-system-deps.sh --run installs runc)"
            )
        if not os.access(TINI, os.X_OK):
            return f"{TINI} (Debian's tini) is not installed: jobs in images need it as init"
        try:
            read_image(Path(launch.image))
        except ImageError as exc:
            return str(exc)
        return None

    def _prepare(self, launch: Launch, jobdir: JobDir, identity: Identity) -> None:
        """The job's own directories, its identity's (made once, kept across attempts)."""
        work = self.work(launch.job_id)
        for directory in (work, checkpoint_dir(work), jobdir.tmp):
            _owned_dir(directory, identity)

    def _launch_record(
        self, launch: Launch, jobdir: JobDir, identity: Identity, network: Network
    ) -> dict[str, object]:
        (node_slice,) = launch.placement.values()  # the local executor has one node
        real_cpus = sorted(os.sched_getaffinity(0))
        affinity = sorted({real_cpus[i % len(real_cpus)] for i in node_slice.cpu_ids})
        base = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith("LC_")}
        if launch.image is not None:
            base.pop("PATH", None)  # the host's: the image's own holds in its container
        work = self.work(launch.job_id)
        env = {
            **base,
            **launch.env,
            **_device_env(launch.attempt, node_slice.gpu_ids),
            **contract_env(work, self.config.grace_s),
        }
        working_dir = launch.working_dir
        spec = job_sandbox(
            identity,
            self.software,
            JobPaths(str(work), str(jobdir.tmp), working_dir),
            datasets=launch.datasets,
            inputs=[str(own_files(self.home(i))) for i in launch.inputs],
            devices=self._devices(node_slice.gpu_ids),
            network=network,
            hostname=self.node_id,
            env=env,
            protected=[str(p) for p in self.protected],
            workdir_roots=self.workdir_roots,
        )
        software = self._software_record(launch)
        record = environment.marker(launch.environment) if launch.environment else None
        if launch.environment is not None and record is not None:
            spec = environment.in_environment(spec, launch.environment, record)
        return {
            "job_id": launch.job_id,
            "attempt": launch.attempt.number,
            "command": list(launch.command),
            "time_limit_s": launch.time_limit_s,
            "grace_s": self.config.grace_s,
            "gpu_ids": node_slice.gpu_ids,
            "cpu_affinity": affinity,
            "memory_mb": node_slice.memory_mb,
            "pids_max": self.config.pids_max,
            "cgroup": cgroups.group_name(self.key, launch.job_id, launch.attempt.number),
            "sandbox": to_record(spec),
            "sandboxed": self.config.sandboxed,
            **software,
        }

    def _software_record(self, launch: Launch) -> dict[str, object]:
        """What the attempt runs in besides the sandbox: its image (and the runtime, and the
        container's id) or its Python environment."""
        if launch.environment is not None:
            env_dir = launch.environment
            return {"environment": {"dir": env_dir, "key": Path(env_dir).name}}
        if launch.image is None:
            return {}
        image = read_image(Path(launch.image))
        number = launch.attempt.number
        return {
            "image": {"dir": launch.image, "digest": image.digest},
            "runtime": self.runtime,
            "container": f"aif-{self.key}-{launch.job_id}-{number}",
        }

    def _devices(self, gpu_ids: list[str]) -> list[Mount]:
        """The device nodes of exactly these GPUs (virtual ones: the test seam's files)."""
        if self.config.virtual_gpu_devices is not None:
            found = [self.config.virtual_gpu_devices / f"nvidia{g}" for g in gpu_ids]
            pairs = [(str(p), f"/dev/{p.name}") for p in found if p.exists()]
        else:
            real = [g for g in gpu_ids if g.startswith("GPU-")]
            pairs = [(node, node) for node in gpus.device_nodes(real)]
        return [Mount(source, target, Access.DEVICE, "GPU") for source, target in pairs]

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
            at = float(started["started_at"])
            if alive or self._leftovers(jobdir):
                return Observation(Phase.RUNNING, started_at=at)
            return Observation(Phase.LOST, reason="the job's supervisor disappeared")
        if alive:
            return Observation(Phase.STARTING)
        if jobdir.attempt.exists():
            return Observation(Phase.LOST, reason="the supervisor died while starting the job")
        return Observation(Phase.NOT_STARTED)

    def _leftovers(self, jobdir: JobDir) -> bool:
        """Processes of an attempt whose supervisor is gone are killed; while any is left, its
        GPUs and CPUs stay booked (the attempt reads as still running)."""
        launch = read_json(jobdir.launch) or {}
        if self.cgroups is None or not isinstance(launch.get("cgroup"), str):
            return False
        group = cgroups.job_group(self.cgroups, launch["cgroup"])
        if cgroups.kill_all(group, deadline_s=0.5):
            return True
        group.remove()
        return False

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


# What a job inherits from the control plane's environment: never its secrets (tokens, DB URLs)
# nor who runs the facility (HOME, USER: the sandbox sets the job's own).
_INHERITED_ENV = frozenset({"PATH", "LANG", "TZ", "TERM"})


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _owned_dir(path: Path, identity: Identity) -> None:
    """A directory of the job's identity, 0700; made once (a requeue finds it as it was left)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    if identity.uid != os.geteuid():
        os.chown(path, identity.uid, identity.gid)


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
