"""Slurm's command-line tools (sbatch, squeue, sacct, scontrol, scancel), run as subprocesses.

Why the tools and not slurmrestd: every Slurm site has them and they need nothing but the
cluster's munge; see docs/slurm.md.

Every call is one argument list (never a shell) with a timeout, in an environment built for the
parsers: TZ=UTC and SLURM_TIME_FORMAT=standard (times as `2026-11-26T18:44:35`, in UTC),
SLURM_CONF when configured, and none of the caller's SLURM_*/SBATCH_*/SQUEUE_* variables, which
would change what the tools print or submit. A job inherits the environment sbatch runs in
(sbatch's `--export` is ALL by default): this small one plus what `submit(env=…)` adds, never
the control plane's own.

Errors: a tool that fails, times out or is missing raises SlurmError with its stderr;
`unreachable` says the controller (or slurmdbd) could not be reached, which is worth retrying.
Asking about or cancelling a job Slurm no longer knows is not an error.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from aifactory.executors.slurm.parse import (
    ACCOUNTING_FIELDS,
    DELIMITER,
    QUEUE_FIELDS,
    JobDetails,
    SlurmJob,
    SlurmNode,
    SlurmPartition,
    parse_accounting,
    parse_job_details,
    parse_nodes,
    parse_partitions,
    parse_queue,
    parse_submitted,
    parse_topology,
)
from aifactory.executors.slurm.values import format_time

Runner = Callable[
    [Sequence[str], Mapping[str, str], str | None, float], subprocess.CompletedProcess[str]
]
IDS_PER_CALL = 500  # keeps command lines short on a busy cluster
_GONE = ("Invalid job id specified", "already completing or completed")
# How scontrol says the cluster declares no topology (Slurm 22.05 prints it and exits 0).
_NO_TOPOLOGY = "no topology"
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Connection timed out",
    "Zero Bytes were transmitted",
    "Slurm backup controller in standby mode",
    "Problem talking to the database",
    "Munge encode failed",
)


class SlurmError(RuntimeError):
    """A Slurm tool failed: `argv`, its exit status (None: it timed out or is missing), stderr."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        tool = os.path.basename(self.argv[0]) if self.argv else "slurm"
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"{tool} {status}: {self.stderr or '(no message)'}")

    @property
    def unreachable(self) -> bool:
        """The controller or slurmdbd did not answer: the same call may well work later."""
        return self.returncode is None or any(s in self.stderr for s in _UNREACHABLE)


class AccountingDisabled(SlurmError):
    """sacct on a cluster without accounting storage (slurmdbd): it has nothing to read."""


@dataclass(frozen=True, slots=True)
class SlurmConfig:
    conf: str | None = None  # SLURM_CONF; None: the tools' own default (or configless)
    bin_dir: str | None = None  # where the tools are; None: found on `path`
    path: str = "/usr/local/bin:/usr/bin:/bin"  # PATH of the tools, and through sbatch of jobs
    timeout_s: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict)  # more variables for every tool


def _runuser() -> str:
    """util-linux's runuser, which lives in sbin (off the tools' PATH)."""
    for candidate in ("/usr/sbin/runuser", "/sbin/runuser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("runuser") or "runuser"


def run_process(
    argv: Sequence[str], env: Mapping[str, str], stdin: str | None, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


class SlurmClient:
    """The Slurm tools as typed calls. Thread-safe: it keeps no state between calls."""

    def __init__(self, config: SlurmConfig | None = None, runner: Runner = run_process) -> None:
        self.config = config or SlurmConfig()
        self._runner = runner
        self._env = self._tool_env()

    def _tool_env(self) -> dict[str, str]:
        account = pwd.getpwuid(os.getuid())
        env = {
            "PATH": self.config.path,
            "HOME": account.pw_dir,
            "USER": account.pw_name,
            "LOGNAME": account.pw_name,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "SLURM_TIME_FORMAT": "standard",
        }
        if self.config.conf:
            env["SLURM_CONF"] = self.config.conf
        env.update(self.config.env)
        return env

    def program(self, tool: str) -> str:
        """Where `tool` is: in bin_dir, or found on the tools' PATH."""
        if self.config.bin_dir:
            return os.path.join(self.config.bin_dir, tool)
        return shutil.which(tool, path=self.config.path) or tool

    def tool_env(self, user: str) -> dict[str, str]:
        """What the tools need, for a tool run as `user` (no more of this process's)."""
        home = "/"
        with contextlib.suppress(KeyError):
            home = pwd.getpwnam(user).pw_dir
        return {**self._env, "USER": user, "LOGNAME": user, "HOME": home}

    def output(
        self,
        tool: str,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        as_user: str | None = None,
        failed: Callable[[str], bool] | None = None,
    ) -> str:
        """Run one tool and return its standard output; raise SlurmError if it fails.
        `as_user`: run it as that user (runuser; the caller is root), so that Slurm runs the
        job under that user's identity. `failed`: whether its stderr says it failed though it
        exited 0 (some scontrol commands do)."""
        program = os.path.join(self.config.bin_dir, tool) if self.config.bin_dir else tool
        argv = [program, *args]
        if as_user is not None:
            argv = [_runuser(), "-u", as_user, "--", *argv]
            env = {**(env or {}), "USER": as_user, "LOGNAME": as_user}
        try:
            done = self._runner(argv, {**self._env, **(env or {})}, stdin, self.config.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SlurmError(argv, None, f"no answer within {self.config.timeout_s:g} s") from exc
        except FileNotFoundError as exc:
            raise SlurmError(argv, None, f"{tool} not found: is Slurm's client installed?") from exc
        if done.returncode != 0 or (failed is not None and failed(done.stderr)):
            error = AccountingDisabled if _accounting_off(done.stderr) else SlurmError
            raise error(argv, done.returncode, done.stderr)
        return done.stdout

    def submit(
        self,
        script: str,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        as_user: str | None = None,
    ) -> int:
        """sbatch a batch script (its text, `#!…` first); return the Slurm job id.

        `options` are sbatch's (`--job-name=…`, `--gres=gpu:2`, `--time=1:00:00`); `env` is
        added to the job's environment; `as_user` submits it as that user (see `output`).
        """
        answer = self.output(
            "sbatch", ["--parsable", *options], stdin=script, env=env, as_user=as_user
        )
        return parse_submitted(answer)

    def queue(
        self,
        job_ids: Iterable[int] | None = None,
        *,
        name: str | None = None,
        user: str | None = None,
    ) -> list[SlurmJob]:
        """Jobs slurmctld still holds, in every state (finished ones for MinJobAge seconds)."""
        fmt = ",".join(f"{f}:{DELIMITER}" for f in QUEUE_FIELDS)
        base = ["--noheader", "--states=all", f"--Format={fmt}"]
        if name is not None:
            base.append(f"--name={name}")
        if user is not None:
            base.append(f"--user={user}")
        jobs: list[SlurmJob] = []
        for ids in _id_batches(job_ids):
            args = [*base, f"--jobs={ids}"] if ids else base
            jobs.extend(parse_queue(self._unless_gone("squeue", args)))
        return jobs

    def accounting(
        self,
        job_ids: Iterable[int] | None = None,
        *,
        steps: bool = False,
        since: float | None = None,
        name: str | None = None,
    ) -> list[SlurmJob]:
        """Jobs as slurmdbd recorded them (sacct), finished ones included for good.

        Without `steps` one record per job; with them also `42.batch`, `42.extern`…, which
        alone carry usage (TRESUsageInTot). `since` (UNIX seconds) bounds the jobs' start; by
        default sacct looks at today only unless job ids are given.
        """
        base = [
            "--noheader",
            "--parsable2",
            "--allusers",
            f"--format={','.join(ACCOUNTING_FIELDS)}",
        ]
        if not steps:
            base.append("--allocations")
        if since is not None:
            base.append(f"--starttime={format_time(since)}")
        if name is not None:
            base.append(f"--name={name}")
        jobs: list[SlurmJob] = []
        for ids in _id_batches(job_ids):
            args = [*base, f"--jobs={ids}"] if ids else base
            jobs.extend(parse_accounting(self.output("sacct", args)))
        return jobs

    def nodes(self) -> list[SlurmNode]:
        return parse_nodes(self.output("scontrol", ["--oneliner", "--details", "show", "node"]))

    def update_node(self, name: str, *, state: str, reason: str | None = None) -> None:
        """`scontrol update nodename=… state=…` (DRAIN needs a reason; RESUME takes none)."""
        args = ["update", f"nodename={name}", f"state={state}"]
        if reason is not None:
            args.append(f"reason={reason}")
        self.output("scontrol", args)

    def partitions(self) -> list[SlurmPartition]:
        return parse_partitions(self.output("scontrol", ["--oneliner", "show", "partition"]))

    def topology(self) -> dict[str, str]:
        """Each node's network block (parse_topology); {} where no topology is declared.
        Other failures raise: a block missed by chance would read as a block gone."""
        try:
            text = self.output("scontrol", ["show", "topology"], failed=_topology_failed)
        except SlurmError as exc:
            if _NO_TOPOLOGY in exc.stderr.lower():
                return {}
            raise
        return parse_topology(text)

    def show_job(self, job_id: int) -> JobDetails | None:
        """One job in detail (per-node CPUs and GPU indices); None once slurmctld forgot it."""
        args = ["--oneliner", "--details", "show", "job", str(job_id)]
        found = parse_job_details(self._unless_gone("scontrol", args))
        return found[0] if found else None

    def cancel(
        self,
        job_id: int,
        *,
        signal: str | None = None,
        batch_only: bool = False,
        full: bool = False,
    ) -> None:
        """scancel a job, or send it `signal` (TERM, USR1…): to the batch shell alone
        (`batch_only`), or to the batch shell and every step (`full`; without either flag
        Slurm signals the steps only). A job that has already ended is left as it is."""
        args = []
        if signal is not None:
            args.append(f"--signal={signal}")
        if batch_only:
            args.append("--batch")
        if full:
            args.append("--full")
        self._unless_gone("scancel", [*args, str(job_id)])

    def _unless_gone(self, tool: str, args: Sequence[str]) -> str:
        """Run a tool about given jobs; a job Slurm no longer knows reads as no output."""
        try:
            return self.output(tool, args)
        except SlurmError as exc:
            if exc.returncode is not None and any(s in exc.stderr for s in _GONE):
                return ""
            raise


def _topology_failed(stderr: str) -> bool:
    """scontrol (22.05) exits 0 when it cannot load the topology: `slurm_load_topo error: …`."""
    said = stderr.lower()
    return "error" in said and _NO_TOPOLOGY not in said


def _accounting_off(stderr: str) -> bool:
    return "accounting storage is disabled" in stderr


def _id_batches(job_ids: Iterable[int] | None) -> Iterator[str]:
    """Comma-joined id lists for --jobs; one empty string when no ids were asked for."""
    if job_ids is None:
        yield ""
        return
    ids = sorted({int(i) for i in job_ids})
    for start in range(0, len(ids), IDS_PER_CALL):
        yield ",".join(str(i) for i in ids[start : start + IDS_PER_CALL])
