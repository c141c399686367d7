"""The Slurm executor: admitted attempts run as Slurm batch jobs on exactly the nodes, GPUs,
CPUs and memory the scheduler chose; aifactory keeps policy, accounting and governance.

Each attempt is a Slurm job named `aif-<instance>-<job>-<attempt>` (executors.slurm.script;
the instance id keeps facilities sharing a cluster apart), submitted as the project's identity
(executors.sandbox.identity) and run in the job's sandbox on its node. Its directory under the
jobs directory, which the cluster's nodes share, holds the facility's records: `slurm.json`
(the Slurm job id, written as soon as sbatch answers), the sandbox's options and files, a
`refused.json` for an attempt the sandbox could not be given, and the `cancel` / `preempt`
markers; and `job/`, the identity's, where the batch script writes `started.json`,
`exit.json` and `output.log`. The job's own directory `work/` is the identity's too. The
directories above are only traversable (0711): the identity reaches its own files and lists
nothing. Starting is idempotent: an attempt with an id, a start record or a Slurm job of its
name is never submitted again, so a crash between sbatch and writing the id cannot run it
twice (the name finds it).

Stopping: cancel is `scancel` (Slurm's SIGTERM, KillWait, SIGKILL); preemption sends SIGTERM to
the batch shell, which passes it to the whole command, and `scancel`s the job once the grace
period is over. Slurm never requeues a job itself (`--no-requeue`): a preempted attempt is
requeued by the facility as a new attempt, a new Slurm job. Jobs not named by this facility are
foreign load: their resources are reported (`foreign_load`) and they are never touched.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import pwd
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aifactory.domain.jobfiles import checkpoint_dir, contract_env, own_files, work_dir
from aifactory.domain.jobs import Network
from aifactory.domain.nodes import Node
from aifactory.domain.resources import Resources
from aifactory.executors.base import Attempt, Launch, NodeOffer, Observation, Outcome, Phase
from aifactory.executors.job_socket import Relayed
from aifactory.executors.local.enter import CannotEnter, Shell
from aifactory.executors.sandbox import environment
from aifactory.executors.sandbox.identity import (
    Identities,
    Identity,
    IdentityConfig,
    IdentityError,
)
from aifactory.executors.sandbox.job import JobPaths, job_sandbox
from aifactory.executors.sandbox.paths import inside
from aifactory.executors.sandbox.software import host_software
from aifactory.executors.sandbox.spec import PathBinder, SandboxSpec, bwrap_options
from aifactory.executors.slurm import relay
from aifactory.executors.slurm.commands import AccountingDisabled, SlurmClient, SlurmError
from aifactory.executors.slurm.enter import Step, open_step
from aifactory.executors.slurm.parse import SlurmJob, SlurmNode
from aifactory.executors.slurm.script import (
    Relay,
    Where,
    attempt_of,
    batch_script,
    job_name,
    sbatch_options,
)
from aifactory.executors.slurm.states import job_phase

log = logging.getLogger("aifactory.executors.slurm")
ENDED = frozenset({Phase.EXITED})
USAGE_WAIT_S = 10.0  # how long an ended job waits for slurmdbd to record its steps' use
FOREIGN_MAX_AGE_S = 1.0


@dataclass(frozen=True, slots=True)
class SlurmExecutorConfig:
    jobs_dir: Path  # on a file system every node of the cluster shares
    site: str  # the site of every node, unless `node_sites` says otherwise
    node_sites: Mapping[str, str] = field(default_factory=dict)  # node name pattern → site
    partition: str | None = None  # None: the cluster's default partition
    accounts: bool = True  # submit under a Slurm account named after the project
    grace_s: float = 10.0  # SIGTERM → kill, for preemptions and before time limits
    instance: str = "0"  # this facility's id (store.flags.instance_id), in its jobs' names
    identities: IdentityConfig = field(default_factory=IdentityConfig.for_this_process)
    software: Sequence[Path] = ()  # read-only software on the nodes besides /usr (e.g. /opt)
    workdir_roots: Sequence[Path] = ()  # where a user's working directory may lie, besides
    # the jobs directory: the site's project areas (docs/sandbox.md)
    open_network: bool = False  # may a job ask for network "open"
    pids_max: int = 8192  # processes of a project's identity on a node (ulimit -u)
    gpu_device_pattern: str = "/dev/nvidia{index}"  # a GPU's device node by its gres index
    path: str = "/usr/local/bin:/usr/bin:/bin"  # the jobs' PATH in their sandboxes
    relay_ports: tuple[int, int] = (42000, 42999)  # a session's relay on its node (relay.py)
    relay_from: str | None = None  # the control plane's network address: the relay's only peer


class SlurmExecutor:
    name = "slurm"
    capabilities = frozenset({"gpu_isolation", "multi_node", "sandbox"})

    def __init__(self, config: SlurmExecutorConfig, client: SlurmClient) -> None:
        self.config = config
        self.client = client
        self.identities = Identities(config.identities)
        self.software = host_software(config.software, python=False)
        roots = [config.jobs_dir, *config.workdir_roots]
        self.workdir_roots = [str(p.resolve()) for p in roots]
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
        config.jobs_dir.chmod(TRAVERSE)
        self._models: dict[str, str | None] = {}  # node → GPU model, from the last inventory
        self._addresses: dict[str, str] = {}  # node → its address (NodeAddr), likewise
        self._foreign: dict[str, Resources] = {}
        self._foreign_at = -FOREIGN_MAX_AGE_S * 2
        self._accounts: set[tuple[str, str]] = set()  # (account, user) known to be ready
        self._enforced: bool | None = None  # does Slurm enforce associations (scontrol)
        self._accounting = True  # until sacct says the cluster keeps no accounting

    # ---- what the cluster offers ---------------------------------------------------------
    def inventory(self) -> list[NodeOffer]:
        """The usable nodes (of our partition), each in its block of Slurm's topology."""
        offers = []
        nodes = self.client.nodes()
        blocks = self.client.topology()
        for node in nodes:
            if self.config.partition and self.config.partition not in node.partitions:
                continue
            if not node.usable:
                log.info("node %s is %s: not offered", node.name, node.state)
                continue
            offers.append(self._offer(node, blocks.get(node.name)))
        return offers

    def _offer(self, node: SlurmNode, block: str | None) -> NodeOffer:
        gpus = sum(node.gpus.values())
        models = [m for m, n in node.gpus.items() if n]
        model = models[0] if len(models) == 1 else None
        self._models[node.name] = model
        self._addresses[node.name] = node.address or node.name
        offer = Node(
            id=node.name,
            site=self.site_of(node.name),
            capacity=Resources(gpus, node.cpus, node.memory_mb),
            gpu_model=model,
            pool=self.config.partition or "default",
            block=block,
        )
        return NodeOffer(offer, [str(i) for i in range(gpus)])

    def site_of(self, node: str) -> str:
        for pattern, site in self.config.node_sites.items():
            if fnmatch.fnmatchcase(node, pattern):
                return site
        return self.config.site

    def foreign_load(self) -> Mapping[str, Resources]:
        """As of the latest look at the queue (at most FOREIGN_MAX_AGE_S old)."""
        if time.monotonic() - self._foreign_at > FOREIGN_MAX_AGE_S:
            self._note_foreign(self.client.queue())
        return dict(self._foreign)

    def _note_foreign(self, queue: list[SlurmJob]) -> None:
        self._foreign = _foreign_load(queue, self.config.instance)
        self._foreign_at = time.monotonic()

    # ---- files ---------------------------------------------------------------------------
    def home(self, job_id: int) -> Path:
        return self.config.jobs_dir / str(job_id)

    def work(self, job_id: int) -> Path:
        """The job's own directory (its identity's): HOME, checkpoints, progress."""
        return work_dir(self.home(job_id))

    def identity(self, project_id: int | None, project: str | None = None) -> Identity:
        return self.identities.of(project_id or 0, project)

    def attempt_dir(self, attempt: Attempt) -> Path:
        return self.home(attempt.job_id) / f"attempt-{attempt.number}"

    def _record(self, attempt: Attempt, name: str) -> Path:
        """What the batch script wrote: in the identity's `job/`, or (an attempt submitted
        before the sandbox) in the attempt's directory itself."""
        own = self.attempt_dir(attempt) / "job" / name
        legacy = self.attempt_dir(attempt) / name
        return legacy if not own.parent.exists() and legacy.exists() else own

    def log_path(self, job_id: int) -> Path:
        numbers = (p.name.removeprefix("attempt-") for p in self.home(job_id).glob("attempt-*"))
        latest = max((int(n) for n in numbers if n.isdigit()), default=1)
        return self._record(Attempt(job_id, latest), "output.log")

    # ---- start ---------------------------------------------------------------------------
    def start(self, launch: Launch) -> None:
        attempt = launch.attempt
        where = Where(
            self.attempt_dir(attempt), Path(launch.working_dir or self.work(attempt.job_id))
        )
        _traversable(self.home(attempt.job_id))
        _traversable(where.attempt_dir)
        if self._slurm_id(attempt) is not None or self._record(attempt, "started.json").exists():
            return  # submitted once already
        if (where.attempt_dir / "cancel").exists() or (where.attempt_dir / REFUSED).exists():
            return  # cancelled before it was submitted, or refused: it never runs
        found = self.client.queue(name=job_name(attempt, self.config.instance))
        if found:
            self._remember(attempt, found[0].id)  # sbatch answered before a crash: adopt it
            return
        try:
            identity = self.identity(launch.project_id, launch.project)
            self._check_network(launch)
            self._check_software(launch)
            self._check_working_dir(launch, identity)
        except (IdentityError, ValueError) as exc:
            _write_json(where.attempt_dir / REFUSED, {"reason": str(exc), "at": time.time()})
            return
        self._submit(launch, where, identity)

    def _check_network(self, launch: Launch) -> None:
        if Network(launch.network) is Network.OPEN and not self.config.open_network:
            raise ValueError("this facility gives jobs no network (network: none)")

    def _check_software(self, launch: Launch) -> None:
        """An environment must be whole (and on the file system the nodes share); an image is
        not run here: sites run containers through their own plugin (docs/software.md)."""
        if launch.image is not None:
            raise ValueError(
                "the Slurm executor runs no container images: run it on a local executor, or "
                "in a Python environment (docs/software.md)"
            )
        if launch.environment is not None and environment.marker(launch.environment) is None:
            raise ValueError(f"the Python environment {launch.environment} is not built whole")

    def _check_working_dir(self, launch: Launch, identity: Identity) -> None:
        """A working directory the user named must be the identity's own (checked again on
        the node, just before the sandbox is made)."""
        if launch.working_dir is None:
            return
        roots = self.workdir_roots
        given = os.path.normpath(launch.working_dir)
        if not any(inside(given, r) and inside(os.path.realpath(given), r) for r in roots):
            raise ValueError(
                f"working directory {launch.working_dir} is not in a directory given to "
                f"projects ({', '.join(roots)}): work in the job's own directory"
            )
        try:
            owner = os.stat(launch.working_dir).st_uid
        except OSError:
            raise ValueError(f"working directory does not exist: {launch.working_dir}") from None
        if identity.uid != os.geteuid() and owner != identity.uid:
            raise ValueError(
                f"working directory {launch.working_dir} does not belong to the project's "
                f"identity {identity.name} (uid {identity.uid})"
            )

    def _submit(self, launch: Launch, where: Where, identity: Identity) -> None:
        attempt = launch.attempt
        warn_s = max(1, int(self.config.grace_s))
        spec = self._sandbox(launch, where, identity, warn_s)
        self._prepare(launch, where, identity, spec)
        options = sbatch_options(
            launch,
            where,
            gpu_models=self._models,
            partition=self.config.partition,
            instance=self.config.instance,
            account=self._account(launch.project, identity),
            warn_s=warn_s,
        )
        script = batch_script(
            launch,
            where,
            checked_dir=launch.working_dir,
            workdir_roots=self.workdir_roots,
            gpu_device_pattern=self.config.gpu_device_pattern,
            pids_max=self.config.pids_max,
            publish=self._relay(launch),
        )
        as_user = identity.name if identity.uid != os.geteuid() else None
        slurm_id = self.client.submit(script, options, as_user=as_user)
        self._remember(attempt, slurm_id)
        log.info("job %s attempt %s is Slurm job %s", attempt.job_id, attempt.number, slurm_id)

    def _sandbox(
        self, launch: Launch, where: Where, identity: Identity, warn_s: int
    ) -> SandboxSpec:
        attempt = launch.attempt
        env = {
            "PATH": self.config.path,
            "LANG": "C.UTF-8",
            **launch.env,
            "AIFACTORY_JOB_ID": str(attempt.job_id),
            "AIFACTORY_ATTEMPT": str(attempt.number),  # above 1: resuming after a preemption
            "PYTHONUNBUFFERED": "1",
            # the shorter of the time-limit warning and the preemption grace
            **contract_env(self.work(attempt.job_id), min(self.config.grace_s, warn_s)),
        }
        spec = job_sandbox(
            identity,
            self.software,
            JobPaths(str(self.work(attempt.job_id)), str(where.own / "tmp"), launch.working_dir),
            datasets=launch.datasets,
            inputs=[str(own_files(self.home(i))) for i in launch.inputs],
            network=Network(launch.network),
            hostname=sorted(launch.placement)[0],
            env=env,
        )
        record = environment.marker(launch.environment) if launch.environment else None
        if launch.environment is None or record is None:
            return spec
        return environment.in_environment(spec, launch.environment, record)

    def _prepare(self, launch: Launch, where: Where, identity: Identity, spec: SandboxSpec) -> None:
        """The identity's directories, and the sandbox's options and files for bubblewrap on
        the node (the options hold the job's environment: the identity's alone, 0400)."""
        work = self.work(launch.job_id)
        for directory in (work, checkpoint_dir(work), where.own, where.own / "tmp"):
            _owned_dir(directory, identity)
        paths = {target: str(where.file(target)) for target, _ in spec.files}
        for target, content in spec.files:
            _write_file(where.file(target), content, 0o444)
        node = sorted(launch.placement)[0]  # where the batch script runs
        _write_json(where.attempt_dir / NODE, {"node": node, "serves": launch.serves})
        if launch.serves is not None:
            self._relay_keys(where, identity, launch.time_limit_s)
        options = bwrap_options(spec, PathBinder(paths, lenient_software=True))
        # the identity's alone (its environment may hold secrets; a group may be shared): what
        # it could rewrite there reaches only its own sandbox (node_enter.py gives it to the
        # command's exec alone)
        _write_file(where.args, "\0".join(options) + "\0", 0o400, identity)

    def _relay(self, launch: Launch) -> Relay | None:
        if launch.serves is None:
            return None
        if "/" in launch.serves or launch.serves in ("", ".", ".."):
            raise ValueError(f"a served socket is a name in the job's directory: {launch.serves}")
        socket = self.work(launch.job_id) / launch.serves
        return Relay(socket, self.config.relay_ports, self.config.relay_from)

    def _relay_keys(self, where: Where, identity: Identity, valid_s: float) -> None:
        """The attempt's own pair of keys (relay.py): the relay's for the identity, the
        facility's for root; each side's certificate readable by the other."""
        server = relay.self_signed("aifactory relay", valid_s)
        client = relay.self_signed("aifactory", valid_s)
        _write_file(where.relay_file(relay.SERVER_KEY), server.both, 0o400, identity)
        _write_file(where.relay_file(relay.SERVER_CERT), server.certificate, 0o444)
        _write_file(where.relay_file(relay.CLIENT_KEY), client.both, 0o400)
        _write_file(where.relay_file(relay.CLIENT_CERT), client.certificate, 0o444)

    def served(self, job_id: int, attempt: int, socket: str) -> Relayed | None:
        """Where the attempt's relay of `socket` listens, once it has said so; the node's
        address as Slurm knows it (NodeAddr)."""
        where = self.attempt_dir(Attempt(job_id, attempt))
        recorded = _read_json(self._record(Attempt(job_id, attempt), relay.RECORD))
        port = relay.port_of(recorded, self.config.relay_ports)
        placed = _read_json(where / NODE)  # the facility's own record
        if port is None or placed is None or placed.get("serves") != socket:
            return None
        name = str(placed.get("node"))
        address = self._addresses.get(name, name)
        return Relayed(address, port, relay.client_context(where))

    def _account(self, project: str | None, identity: Identity) -> str | None:
        """The project's Slurm account, made the first time (with the project's identity in
        it, where Slurm enforces associations): Slurm then accounts, and can limit, the
        project's use. None: the default."""
        if not (self.config.accounts and project):
            return None
        account = project.lower()  # Slurm keeps account names in lower case
        if (account, identity.name) in self._accounts:
            return account
        try:
            if not self._sacctmgr("show", "account", account, "format=account"):
                self._sacctmgr("add", "account", f"name={account}", "Description=aifactory")
            if self._enforces_associations():
                self._associate(account, identity.name)
        except SlurmError as exc:
            log.warning("no Slurm account for project %s, using the default: %s", project, exc)
            return None
        self._accounts.add((account, identity.name))
        return account

    def _associate(self, account: str, user: str) -> None:
        if not self._sacctmgr("show", "assoc", f"account={account}", f"user={user}"):
            self._sacctmgr("add", "user", f"name={user}", f"account={account}")

    def _enforces_associations(self) -> bool:
        """Whether a user must be in an account to submit under it (AccountingStorageEnforce
        names associations, limits, qos or safe). Only then are users added to accounts: an
        association nobody needs is one more thing to keep (and adding a user crashes
        slurmctld 22.05.8 on the test cluster, in assoc_mgr_update_assocs)."""
        if self._enforced is None:
            config = self.client.output("scontrol", ["show", "config"])
            line = next(
                (s for s in config.splitlines() if s.startswith("AccountingStorageEnforce")), ""
            )
            setting = line.partition("=")[2].lower()
            self._enforced = any(w in setting for w in ("assoc", "limits", "qos", "safe", "all"))
        return self._enforced

    def _sacctmgr(self, *args: str) -> str:
        return self.client.output("sacctmgr", ["--immediate", "--noheader", "--parsable2", *args])

    def _remember(self, attempt: Attempt, slurm_id: int) -> None:
        _write_json(self.attempt_dir(attempt) / "slurm.json", {"slurm_job_id": slurm_id})

    def _slurm_id(self, attempt: Attempt) -> int | None:
        record = _read_json(self.attempt_dir(attempt) / "slurm.json")
        return int(record["slurm_job_id"]) if record else None

    # ---- observe -------------------------------------------------------------------------
    def poll(self, attempts: Iterable[Attempt]) -> dict[Attempt, Observation]:
        wanted = list(attempts)
        queue = self.client.queue()
        self._note_foreign(queue)
        by_name = {job.name: job for job in queue}
        by_id = {job.id: job for job in queue}
        seen: dict[Attempt, Observation] = {}
        forgotten: dict[Attempt, int] = {}
        for attempt in wanted:
            slurm_id = self._slurm_id(attempt)
            named = job_name(attempt, self.config.instance)
            job = by_id.get(slurm_id) if slurm_id is not None else by_name.get(named)
            if job is None and slurm_id is not None:
                forgotten[attempt] = slurm_id
                continue
            seen[attempt] = self._observe(attempt, job)
        seen.update(self._from_accounting(forgotten))
        self._enforce_grace(seen)
        return seen

    def _observe(self, attempt: Attempt, job: SlurmJob | None) -> Observation:
        refused = _read_json(self.attempt_dir(attempt) / REFUSED)
        if refused is not None:
            reason = f"no sandbox for this job: {refused.get('reason')}"
            return Observation(
                Phase.EXITED,
                ended_at=_number(refused.get("at")),
                outcome=Outcome.FAILED,
                reason=reason,
            )
        if job is None:
            if self._record(attempt, "started.json").exists():
                return self._from_files(attempt, "Slurm no longer knows the job")
            return Observation(Phase.NOT_STARTED)
        phase, outcome = job_phase(job.state)
        if phase is Phase.STARTING:
            return Observation(Phase.STARTING, reason=job.reason)
        if phase is Phase.RUNNING:
            return Observation(Phase.RUNNING, started_at=job.started_at)
        usage = self._usage(job)
        if usage is None:  # ended, but Slurm's accounting has not recorded its use yet
            return Observation(Phase.RUNNING, started_at=job.started_at)
        return replace(self._exited(attempt, job, outcome), usage=usage)

    def _usage(self, job: SlurmJob) -> dict[str, float] | None:
        """What Slurm's accounting measured of an ended job's steps (TRESUsageInTot): CPU time,
        and energy where the cluster gathers it (acct_gather_energy). None: not recorded yet,
        for up to USAGE_WAIT_S after the end; {} without accounting."""
        if not self._accounting:
            return {}
        try:
            steps = [j for j in self.client.accounting([job.id], steps=True) if j.step]
        except AccountingDisabled:
            self._accounting = False
            return {}
        except SlurmError as exc:
            log.warning("Slurm job %s: no usage from sacct: %s", job.id, exc)
            return {}
        if not steps:
            ended = job.ended_at or time.time()
            return None if time.time() - ended < USAGE_WAIT_S else {}
        usage = {
            "cpu_time_s": sum(s.usage.get("cpu", 0.0) for s in steps),
            "energy_j": sum(s.usage.get("energy", 0.0) for s in steps),
        }
        return {key: value for key, value in usage.items() if value > 0}

    def _exited(self, attempt: Attempt, job: SlurmJob, outcome: Outcome | None) -> Observation:
        code = job.exit.returncode if job.exit is not None else None
        record = _read_json(self._record(attempt, "exit.json"))
        if record is not None and isinstance(record.get("exit_code"), int):
            code = int(record["exit_code"])
        outcome = self._asked(attempt) or outcome or Outcome.FAILED
        if outcome is Outcome.SUCCEEDED and code not in (0, None):
            outcome = Outcome.FAILED
        return Observation(
            Phase.EXITED,
            started_at=job.started_at,
            ended_at=job.ended_at or time.time(),
            exit_code=code,
            outcome=outcome,
            reason=f"Slurm job {job.id}: {job.state_detail}"
            + (f" ({job.reason})" if job.reason and job.reason != "None" else ""),
        )

    def _asked(self, attempt: Attempt) -> Outcome | None:
        """What the facility asked of an attempt that then ended: a cancel wins."""
        if (self.attempt_dir(attempt) / "cancel").exists():
            return Outcome.CANCELLED
        if (self.attempt_dir(attempt) / "preempt").exists():
            return Outcome.PREEMPTED
        return None

    def _from_accounting(self, forgotten: Mapping[Attempt, int]) -> dict[Attempt, Observation]:
        """Attempts slurmctld has forgotten (ended more than MinJobAge ago): from sacct, else
        from the files the batch script left."""
        if not forgotten:
            return {}
        try:
            records = {
                j.id: j for j in self.client.accounting(forgotten.values()) if j.step is None
            }
        except AccountingDisabled:
            records = {}
        seen = {}
        for attempt, slurm_id in forgotten.items():
            job = records.get(slurm_id)
            if job is not None:
                seen[attempt] = self._observe(attempt, job)
            else:
                seen[attempt] = self._from_files(attempt, f"Slurm job {slurm_id} is not known")
        return seen

    def _from_files(self, attempt: Attempt, why: str) -> Observation:
        record = _read_json(self._record(attempt, "exit.json"))
        started = _read_json(self._record(attempt, "started.json")) or {}
        if record is None:
            return Observation(Phase.LOST, reason=f"{why} and it left no exit record")
        code = int(record["exit_code"])
        outcome = self._asked(attempt) or (Outcome.SUCCEEDED if code == 0 else Outcome.FAILED)
        return Observation(
            Phase.EXITED,
            started_at=_number(started.get("started_at")),
            ended_at=_number(record.get("ended_at")),
            exit_code=code,
            outcome=outcome,
            reason=f"{why}; from its exit record",
        )

    # ---- into a running attempt -------------------------------------------------------------
    def open_shell(
        self, job_id: int, attempt: int, command: list[str], *, tty: bool, rows: int, cols: int
    ) -> Shell:
        """`command` in the running attempt's sandbox on its node (executors.slurm.enter)."""
        step = self._step(Attempt(job_id, attempt))
        return open_step(
            step,
            command,
            srun=self.client.program("srun"),
            tool_env=self.client.tool_env(_user_name(step.uid)),
            tty=tty,
            rows=rows,
            cols=cols,
        )

    def _step(self, attempt: Attempt) -> Step:
        where = self.attempt_dir(attempt)
        slurm_id = self._slurm_id(attempt)
        placed = _read_json(where / NODE)
        status = _read_json(self._record(attempt, "status.json"))  # bubblewrap's
        if slurm_id is None or placed is None or self._record(attempt, "exit.json").exists():
            raise CannotEnter("the job is not running")
        pid = (status or {}).get("child-pid")
        if not isinstance(pid, int) or pid <= 1:
            raise CannotEnter("the job's sandbox has not started yet")
        try:
            own = os.stat(where / "job")  # the identity's directory
        except FileNotFoundError:
            raise CannotEnter(
                "the job runs in an older layout: exec into it is not supported"
            ) from None
        if own.st_uid in (0, os.geteuid()):
            raise CannotEnter("the job's directory is not its identity's")
        return Step(
            slurm_id, str(placed["node"]), pid, own.st_uid, own.st_gid, where / "sandbox.args"
        )

    # ---- stop ----------------------------------------------------------------------------
    def cancel(self, attempt: Attempt) -> None:
        _touch(self.attempt_dir(attempt) / "cancel", time.time())
        slurm_id = self._slurm_id(attempt)
        if slurm_id is not None:
            self.client.cancel(slurm_id)

    def preempt(self, attempt: Attempt) -> None:
        """SIGTERM to the job now (it may checkpoint); the kill follows after the grace."""
        marker = self.attempt_dir(attempt) / "preempt"
        if not marker.exists():
            _touch(marker, time.time())
        slurm_id = self._slurm_id(attempt)
        if slurm_id is None:
            return  # not submitted: the marker keeps it from being submitted at all
        try:
            self.client.cancel(slurm_id, signal="TERM", batch_only=True)
        except SlurmError:
            self.client.cancel(slurm_id)  # still pending: signals go to running jobs only

    def _enforce_grace(self, seen: Mapping[Attempt, Observation]) -> None:
        """Preempted attempts still running once their grace is over are killed."""
        now = time.time()
        for attempt, observed in seen.items():
            if observed.phase in ENDED or observed.phase is Phase.NOT_STARTED:
                continue
            marker = self.attempt_dir(attempt) / "preempt"
            asked = _marked_at(marker)
            slurm_id = self._slurm_id(attempt)
            if asked is not None and now - asked > self.config.grace_s and slurm_id is not None:
                self.client.cancel(slurm_id)


def _foreign_load(queue: Iterable[SlurmJob], instance: str) -> dict[str, Resources]:
    """What running jobs this facility did not start hold on each node (an even share per node
    of a job spanning several)."""
    load: dict[str, Resources] = {}
    for job in queue:
        phase, _ = job_phase(job.state)
        if (
            phase is not Phase.RUNNING
            or attempt_of(job.name, instance) is not None
            or not job.nodes
        ):
            continue
        count = len(job.nodes)
        share = Resources(
            int(job.tres.get("gres/gpu", 0)) // count,
            int(job.tres.get("cpu", 0)) // count,
            int(job.tres.get("mem", 0)) // count,
        )
        for node in job.nodes:
            load[node] = load.get(node, Resources()) + share
    return load


def _touch(path: Path, at: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{at}\n")


def _marked_at(path: Path) -> float | None:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None


def _write_json(path: Path, record: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A small record, read only if it is a plain file (the identity's records are never
    followed through a link, nor waited on as a pipe)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            found = json.loads(handle.read(MAX_RECORD))
        except ValueError:
            return None
    return found if isinstance(found, dict) else None


TRAVERSE = 0o711  # the facility's directories on the shared file system: reached, not listed
REFUSED = "refused.json"
NODE = "node.json"  # the node its batch script runs on, and the socket it relays
MAX_RECORD = 64 * 1024


def _traversable(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(TRAVERSE)


def _owned_dir(path: Path, identity: Identity) -> None:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    if identity.uid != os.geteuid():
        os.chown(path, identity.uid, identity.gid)


def _write_file(path: Path, content: str | bytes, mode: int, owner: Identity | None = None) -> None:
    """Written private first (a key is never readable by others, even for a moment)."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(content.encode() if isinstance(content, str) else content)
    if owner is not None and owner.uid != os.geteuid():
        os.chown(tmp, owner.uid, owner.gid)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
