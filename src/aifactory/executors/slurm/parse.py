"""What Slurm's tools print, read into typed records: pure functions over text, no I/O.

The client (`commands.py`) asks each tool for exactly the fields named here, in this order, so
the parser and the command line can never disagree:

- `squeue --noheader --states=all -O <QUEUE_FIELDS, each with suffix "|">` → `parse_queue`
- `sacct --noheader --parsable2 --format=<ACCOUNTING_FIELDS>` → `parse_accounting`
- `scontrol -o -d show job <id>` → `parse_job_details`; `scontrol -o -d show node` →
  `parse_nodes`; `scontrol -o show partition` → `parse_partitions`; `scontrol show topology`
  → `parse_topology`; `sbatch --parsable` → `parse_submitted`.

Free text goes last: a job's name is the last field and its comment the one before, so a `|` in
a name cannot shift the other fields (a `|` in a comment of a job not ours can still garble that
job's name and comment; nothing else).

Invariants: `started_at` is set only once a job has started and `ended_at` only once it has
ended (squeue prints expected times for both before that); every time is UNIX seconds, read as
UTC (the client runs the tools with TZ=UTC). States map to the executor's Phase and Outcome
through `states.job_phase`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.slurm.states import base_state, job_phase
from aifactory.executors.slurm.values import (
    ExitStatus,
    expand_hostlist,
    expand_numbers,
    gpus_by_model,
    parse_exit,
    parse_gres,
    parse_key_values,
    parse_memory_mb,
    parse_seconds,
    parse_time,
    parse_tres,
    split_top_level,
    text_or_none,
)

DELIMITER = "|"
QUEUE_FIELDS = (
    "JobID",  # unique per job array element: what scancel and scontrol take
    "ArrayJobID",
    "ArrayTaskID",
    "State",
    "Reason",
    "exit_code",  # the raw wait status
    "NodeList",
    "SubmitTime",
    "StartTime",
    "EndTime",
    "TimeLimit",
    "NumNodes",
    "NumCPUs",
    "MinMemory",
    "tres-alloc",  # allocated once running, requested before
    "Partition",
    "Account",
    "UserName",
    "RestartCnt",
    "Comment",
    "Name",
)
ACCOUNTING_FIELDS = (
    "JobIDRaw",  # `42`, or a step: `42.batch`, `42.extern`, `42.0`
    "State",
    "Reason",
    "ExitCode",
    "Submit",
    "Start",
    "End",
    "Elapsed",
    "Timelimit",
    "NNodes",
    "NodeList",
    "AllocTRES",
    "TRESUsageInTot",  # on steps only: cpu (time), mem, vmem, fs/disk, energy
    "Partition",
    "Account",
    "User",
    "Comment",
    "JobName",
)


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job (or, from sacct with steps, one step) as Slurm reports it."""

    id: int
    name: str
    state: str  # the base state, one of JOB_STATES
    state_detail: str  # as printed: `CANCELLED by 0`
    reason: str | None
    nodes: tuple[str, ...]
    submitted_at: float | None
    started_at: float | None
    ended_at: float | None
    time_limit_s: int | None  # None: no limit
    exit: ExitStatus | None
    partition: str | None = None
    account: str | None = None
    user: str | None = None
    comment: str | None = None
    tres: Mapping[str, float] = field(default_factory=dict)  # cpu, mem (MiB), gres/gpu, node…
    usage: Mapping[str, float] = field(default_factory=dict)  # sacct steps: TRESUsageInTot
    step: str | None = None  # sacct: `batch`, `extern`, `0`; None for the job itself
    array_task: str | None = None
    restarts: int = 0  # requeues so far
    elapsed_s: int | None = None

    @property
    def phase(self) -> Phase:
        return job_phase(self.state)[0]

    @property
    def outcome(self) -> Outcome | None:
        return job_phase(self.state)[1]

    @property
    def gpus(self) -> int:
        return int(self.tres.get("gres/gpu", 0))


def _times(
    state: str, nodes: tuple[str, ...], submit: str, start: str, end: str
) -> tuple[float | None, float | None, float | None]:
    """Submitted, started, ended. A job cancelled while pending has a start time in Slurm (the
    moment it was cancelled) but never had nodes: it never started."""
    phase, _ = job_phase(state)
    started = parse_time(start) if phase is not Phase.STARTING and nodes else None
    ended = parse_time(end) if phase is Phase.EXITED else None
    return parse_time(submit), started, ended


def _fields(line: str, names: tuple[str, ...], trailing: bool) -> dict[str, str] | None:
    if trailing and line.endswith(DELIMITER):
        line = line[: -len(DELIMITER)]
    if not line.strip():
        return None
    values = line.split(DELIMITER, len(names) - 1)
    if len(values) != len(names):
        raise ValueError(f"expected {len(names)} fields, got {len(values)}: {line!r}")
    return dict(zip(names, values, strict=True))


def parse_queue(text: str) -> list[SlurmJob]:
    """The output of `squeue --noheader --states=all -O QUEUE_FIELDS` (suffix `|` each)."""
    jobs = []
    for line in text.splitlines():
        row = _fields(line, QUEUE_FIELDS, trailing=True)
        if row is not None:
            jobs.append(_queue_job(row))
    return jobs


def _queue_job(row: dict[str, str]) -> SlurmJob:
    state = base_state(row["State"])
    nodes = tuple(expand_hostlist(row["NodeList"]))
    submitted, started, ended = _times(
        state, nodes, row["SubmitTime"], row["StartTime"], row["EndTime"]
    )
    ended_phase = job_phase(state)[0] is Phase.EXITED
    status = row["exit_code"].strip()
    return SlurmJob(
        id=int(row["JobID"]),
        name=row["Name"],
        state=state,
        state_detail=row["State"].strip(),
        reason=text_or_none(row["Reason"]),
        nodes=nodes,
        submitted_at=submitted,
        started_at=started,
        ended_at=ended,
        time_limit_s=parse_seconds(row["TimeLimit"]),
        exit=ExitStatus.from_wait_status(int(status)) if ended_phase and status.isdigit() else None,
        partition=text_or_none(row["Partition"]),
        account=text_or_none(row["Account"]),
        user=text_or_none(row["UserName"]),
        comment=text_or_none(row["Comment"]),
        tres=parse_tres(row["tres-alloc"]),
        array_task=text_or_none(row["ArrayTaskID"]),
        restarts=int(row["RestartCnt"] or 0),
    )


def parse_accounting(text: str) -> list[SlurmJob]:
    """The output of `sacct --noheader --parsable2 --format=ACCOUNTING_FIELDS`."""
    jobs = []
    for line in text.splitlines():
        row = _fields(line, ACCOUNTING_FIELDS, trailing=False)
        if row is not None:
            jobs.append(_accounting_job(row))
    return jobs


def _accounting_job(row: dict[str, str]) -> SlurmJob:
    state = base_state(row["State"])
    job_id, _, step = row["JobIDRaw"].partition(".")
    nodes = tuple(expand_hostlist(row["NodeList"]))
    submitted, started, ended = _times(state, nodes, row["Submit"], row["Start"], row["End"])
    return SlurmJob(
        id=int(job_id),
        name=row["JobName"],
        state=state,
        state_detail=row["State"].strip(),
        reason=text_or_none(row["Reason"]),
        nodes=nodes,
        submitted_at=submitted,
        started_at=started,
        ended_at=ended,
        time_limit_s=parse_seconds(row["Timelimit"]),
        exit=parse_exit(row["ExitCode"]),
        partition=text_or_none(row["Partition"]),
        account=text_or_none(row["Account"]),
        user=text_or_none(row["User"]),
        comment=text_or_none(row["Comment"]),
        tres=parse_tres(row["AllocTRES"]),
        usage=parse_tres(row["TRESUsageInTot"]),
        step=step or None,
        elapsed_s=parse_seconds(row["Elapsed"]),
    )


def parse_submitted(text: str) -> int:
    """`sbatch --parsable` answers `42` or `42;cluster`."""
    first = text.strip().splitlines()[-1] if text.strip() else ""
    job_id = first.split(";", 1)[0]
    if not job_id.isdigit():
        raise ValueError(f"sbatch did not answer a job id: {text!r}")
    return int(job_id)


@dataclass(frozen=True, slots=True)
class NodeAllocation:
    """What a running job holds on one node (scontrol -d show job)."""

    cpu_ids: tuple[int, ...]
    memory_mb: int
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class JobDetails:
    """`scontrol -o -d show job`: the job, its per-node allocation, and every raw field."""

    job: SlurmJob
    allocations: Mapping[str, NodeAllocation]
    fields: Mapping[str, str]


def parse_job_details(text: str) -> list[JobDetails]:
    return [_details(line) for line in text.splitlines() if line.strip()]


def _details(line: str) -> JobDetails:
    kv = parse_key_values(line)
    state = base_state(kv.get("JobState", ""))
    nodes = tuple(expand_hostlist(kv.get("NodeList", "")))
    submitted, started, ended = _times(
        state, nodes, kv.get("SubmitTime", ""), kv.get("StartTime", ""), kv.get("EndTime", "")
    )
    job = SlurmJob(
        id=int(kv["JobId"]),
        name=kv.get("JobName", ""),
        state=state,
        state_detail=kv.get("JobState", ""),
        reason=text_or_none(kv.get("Reason", "")),
        nodes=nodes,
        submitted_at=submitted,
        started_at=started,
        ended_at=ended,
        time_limit_s=parse_seconds(kv.get("TimeLimit", "")),
        exit=parse_exit(kv.get("ExitCode", "")) if job_phase(state)[0] is Phase.EXITED else None,
        partition=text_or_none(kv.get("Partition", "")),
        account=text_or_none(kv.get("Account", "")),
        user=text_or_none(kv.get("UserId", "").split("(", 1)[0]),
        comment=text_or_none(kv.get("Comment", "")),
        tres=parse_tres(kv.get("TRES", "")),
        array_task=text_or_none(kv.get("ArrayTaskId", "")),
        restarts=int(kv.get("Restarts", "0") or 0),
        elapsed_s=parse_seconds(kv.get("RunTime", "")),
    )
    return JobDetails(job, parse_job_allocations(line), kv)


def parse_job_allocations(line: str) -> dict[str, NodeAllocation]:
    """The per-node part of `scontrol -d show job`: `Nodes=n1 CPU_IDs=0-1 Mem=2000 GRES=…`."""
    allocations: dict[str, NodeAllocation] = {}
    chunks = line.split(" Nodes=")[1:]
    for chunk in chunks:
        kv = parse_key_values("Nodes=" + chunk)
        gres = parse_gres(kv.get("GRES", ""))
        gpu_indices = tuple(i for g in gres if g.name == "gpu" for i in g.indices)
        cpu_ids = tuple(expand_numbers(kv["CPU_IDs"])) if kv.get("CPU_IDs") else ()
        for node in expand_hostlist(kv.get("Nodes", "")):
            allocations[node] = NodeAllocation(cpu_ids, int(kv.get("Mem", "0") or 0), gpu_indices)
    return allocations


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """A node as `scontrol -o -d show node` reports it."""

    name: str
    state: str  # the base state: IDLE, MIXED, ALLOCATED, DOWN, FUTURE, UNKNOWN…
    flags: frozenset[str]  # DRAIN, COMPLETING, NOT_RESPONDING, POWERED_DOWN, RESERVED…
    cpus: int
    cpus_allocated: int
    memory_mb: int
    memory_allocated_mb: int
    gpus: Mapping[str | None, int]  # by model; None: GPUs declared without a type
    gpus_used: Mapping[str | None, int]
    partitions: tuple[str, ...]
    address: str | None
    reason: str | None

    @property
    def gpu_model(self) -> str | None:
        models = [m for m in self.gpus if m]
        return models[0] if len(models) == 1 else None

    @property
    def usable(self) -> bool:
        """Up, answering, and taking new jobs."""
        bad = {"DRAIN", "NOT_RESPONDING", "POWERED_DOWN", "POWERING_DOWN", "FAIL", "MAINT"}
        return self.state in ("IDLE", "MIXED", "ALLOCATED") and not (self.flags & bad)


# sinfo/scontrol mark some node states with one trailing character.
_STATE_MARKS = {
    "*": "NOT_RESPONDING",
    "~": "POWERED_DOWN",
    "#": "POWERING_UP",
    "%": "POWERING_DOWN",
    "!": "POWER_DOWN",
    "$": "MAINT",
    "@": "REBOOT_REQUESTED",
    "^": "REBOOT_ISSUED",
    "-": "PLANNED",
}


def parse_node_state(text: str) -> tuple[str, frozenset[str]]:
    """`MIXED+DRAIN` → ("MIXED", {"DRAIN"}); `IDLE*` → ("IDLE", {"NOT_RESPONDING"})."""
    words = [w for w in text.strip().upper().split("+") if w]
    flags = set()
    cleaned = []
    for word in words:
        while word and word[-1] in _STATE_MARKS:
            flags.add(_STATE_MARKS[word[-1]])
            word = word[:-1]
        cleaned.append(word)
    base = cleaned[0] if cleaned else "UNKNOWN"
    return base, frozenset(flags | set(cleaned[1:]))


def parse_nodes(text: str) -> list[SlurmNode]:
    """The output of `scontrol -o -d show node` (one line per node)."""
    return [_node(parse_key_values(line)) for line in text.splitlines() if line.strip()]


def _node(kv: Mapping[str, str]) -> SlurmNode:
    state, flags = parse_node_state(kv.get("State", ""))
    memory = parse_memory_mb(kv.get("RealMemory", "0")) or 0.0
    allocated = parse_memory_mb(kv.get("AllocMem", "0")) or 0.0
    return SlurmNode(
        name=kv["NodeName"],
        state=state,
        flags=flags,
        cpus=int(kv.get("CPUTot", "0") or 0),
        cpus_allocated=int(kv.get("CPUAlloc", "0") or 0),
        memory_mb=int(memory),
        memory_allocated_mb=int(allocated),
        gpus=gpus_by_model(parse_gres(kv.get("Gres", ""))),
        gpus_used=gpus_by_model(parse_gres(kv.get("GresUsed", ""))),
        partitions=tuple(split_top_level(kv.get("Partitions", ""))),
        address=text_or_none(kv.get("NodeAddr", "")),
        reason=text_or_none(kv.get("Reason", "")),
    )


@dataclass(frozen=True, slots=True)
class SlurmPartition:
    name: str
    nodes: tuple[str, ...]
    default: bool
    up: bool
    max_time_s: int | None  # None: no limit


def parse_partitions(text: str) -> list[SlurmPartition]:
    """The output of `scontrol -o show partition`."""
    partitions = []
    for line in text.splitlines():
        if not line.strip():
            continue
        kv = parse_key_values(line)
        partitions.append(
            SlurmPartition(
                name=kv["PartitionName"],
                nodes=tuple(expand_hostlist(kv.get("Nodes", ""))),
                default=kv.get("Default") == "YES",
                up=kv.get("State") == "UP",
                max_time_s=parse_seconds(kv.get("MaxTime", "")),
            )
        )
    return partitions


def parse_topology(text: str) -> dict[str, str]:
    """The output of `scontrol show topology` → each node's network block.

    topology/tree prints a switch a line (`SwitchName=s0 Level=0 LinkSpeed=1 Nodes=n[1-2]`);
    a node's block is its leaf switch, the one at Level 0 (higher levels join switches).
    topology/block prints `BlockName=b1 BlockIndex=0 Nodes=n[1-4] BlockSize=4` (its
    `AggregatedBlock` lines join blocks and are not one). Nothing printed: no blocks. A node
    under two leaves (several rails) keeps the first.
    """
    blocks: dict[str, str] = {}
    for line in text.splitlines():
        kv = parse_key_values(line)
        name = _block_name(kv)
        if name:
            for node in expand_hostlist(kv.get("Nodes", "")):
                blocks.setdefault(node, name)
    return blocks


def _block_name(kv: Mapping[str, str]) -> str:
    if "SwitchName" in kv:
        return kv["SwitchName"] if kv.get("Level") == "0" else ""
    return kv.get("BlockName", "")
