"""What the Slurm executor submits for one attempt: its name, sbatch options and batch script.

Pure: a Launch and where its files go in, text out. An attempt is named
`aif-<instance>-<job>-<attempt>` in Slurm, so it can be found again by name after a
control-plane crash, and work not named by this facility instance is someone else's (foreign
load).

The batch script runs as the project's identity (the job is submitted as that user) and runs
the command in the job's sandbox (executors.sandbox): bubblewrap with the options the facility
wrote for the attempt (`sandbox.args`, read through `--args`), plus what only the node knows —
Slurm's own variables and the device nodes of the GPUs Slurm gave it. It writes two small
files to the attempt's own directory (`job/`, the identity's) on the shared file system:
`started.json` as it begins and `exit.json` with the exit code as it ends. SIGTERM to the batch
shell (the facility's preemption and time-limit warning, `scancel --signal=TERM --batch`) is
passed on to the command's process group in the sandbox, which then has the grace period to
checkpoint before Slurm kills it. A working directory the user named is checked again on the
node: it must be the identity's own. A job whose socket the facility reaches (a session's
notebook server) gets a relay first (executors.slurm.relay): socat on the first free port of
the range, behind mutual TLS, its port recorded in `relay.json`; no free port, no run.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aifactory.executors.base import Attempt, Launch
from aifactory.executors.slurm import relay

NAME = re.compile(r"^aif-([0-9a-z]+)-(\d+)-(\d+)$")


def job_name(attempt: Attempt, instance: str) -> str:
    """`instance` (store.flags.instance_id) keeps facilities sharing a cluster apart."""
    return f"aif-{instance}-{attempt.job_id}-{attempt.number}"


def attempt_of(name: str, instance: str) -> Attempt | None:
    """The attempt a Slurm job name stands for; None: not one this facility started."""
    found = NAME.match(name)
    if found is None or found[1] != instance:
        return None
    return Attempt(int(found[2]), int(found[3]))


def time_limit_minutes(seconds: int) -> int:
    """Slurm counts limits in whole minutes: a limit is rounded up, never cut short."""
    return max(1, math.ceil(seconds / 60))


@dataclass(frozen=True, slots=True)
class Relay:
    """The job's socket to publish on its node, and the ports it may take."""

    socket: Path
    ports: tuple[int, int]
    allow_from: str | None = None  # the control plane's address (socat's range=), if known


@dataclass(frozen=True, slots=True)
class Where:
    """Where an attempt's files go (on the file system the cluster's nodes share): the
    facility's records in `attempt_dir`, the identity's in its `job/`."""

    attempt_dir: Path
    working_dir: Path

    @property
    def own(self) -> Path:
        """The attempt's directory of the identity's: what the batch script writes."""
        return self.attempt_dir / "job"

    @property
    def log(self) -> Path:
        return self.own / "output.log"

    @property
    def args(self) -> Path:
        return self.attempt_dir / "sandbox.args"

    def relay_file(self, name: str) -> Path:
        return self.attempt_dir / name

    def file(self, target: str) -> Path:
        """Where the facility's file for `target` (/etc/passwd…) lies for bubblewrap."""
        return self.attempt_dir / ("sandbox" + target.replace("/", "-"))


def sbatch_options(
    launch: Launch,
    where: Where,
    *,
    instance: str,
    gpu_models: Mapping[str, str | None],
    partition: str | None,
    account: str | None,
    warn_s: int,
) -> list[str]:
    """Exactly the placement the scheduler chose: these nodes, these GPUs, CPUs and memory."""
    nodes = sorted(launch.placement)
    first = launch.placement[nodes[0]]
    gpus = len(first.gpu_ids)
    options = [
        f"--job-name={job_name(launch.attempt, instance)}",
        f"--comment=aifactory job {launch.job_id} attempt {launch.attempt.number}",
        f"--nodes={len(nodes)}",
        f"--nodelist={','.join(nodes)}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={max(1, len(first.cpu_ids))}",
        f"--mem={first.memory_mb}M",
        f"--time={time_limit_minutes(launch.time_limit_s)}",
        f"--chdir={where.own}",  # the sandbox's own working directory comes from bubblewrap
        f"--output={where.log}",
        "--open-mode=append",
        f"--signal=B:TERM@{warn_s}",  # before the time limit: a chance to checkpoint
        "--no-requeue",  # requeueing is the facility's (a new attempt), never Slurm's own
    ]
    if gpus:
        model = gpu_models.get(nodes[0])
        options.append(f"--gres=gpu:{model}:{gpus}" if model else f"--gres=gpu:{gpus}")
    if partition:
        options.append(f"--partition={partition}")
    if account:
        options.append(f"--account={account}")
    return options


def batch_script(
    launch: Launch,
    where: Where,
    *,
    checked_dir: str | None = None,
    workdir_roots: Sequence[str] = (),
    gpu_device_pattern: str = "/dev/nvidia{index}",
    pids_max: int = 8192,
    publish: Relay | None = None,
) -> str:
    """The batch script: record the start, run the command in its sandbox, pass SIGTERM on,
    record the end. `checked_dir`: a working directory to check on the node (the user's);
    `publish`: a socket of the job the facility reaches through a relay."""
    own = shlex.quote(str(where.own))
    args = shlex.quote(str(where.args))
    command = shlex.join(launch.command)
    before, _, after = gpu_device_pattern.partition("{index}")
    device = f'{shlex.quote(before)}"$gpu"{shlex.quote(after)}' if _ else shlex.quote(before)
    check = _workdir_check(checked_dir, workdir_roots) if checked_dir else ""
    check += relay_commands(publish, where) if publish else ""
    return f"""#!/bin/bash
# aifactory job {launch.job_id}, attempt {launch.attempt.number} (written by the Slurm executor)
export PATH=/usr/bin:/bin
dir={own}
record() {{ printf '%s\\n' "$2" > "$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"; }}
record started.json "{{\\"started_at\\": $(date +%s.%N), \\"slurm_job_id\\": ${{SLURM_JOB_ID:-0}}}}"
relay=
finish() {{
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
  record exit.json "{{\\"exit_code\\": $1, \\"ended_at\\": $(date +%s.%N)}}"
  exit "$1"
}}
[ -x /usr/bin/bwrap ] || {{ echo "aifactory: no bubblewrap on $(hostname)"; finish 1; }}
{check}ulimit -u {int(pids_max)} 2>/dev/null  # processes of this identity on the node
node=()
for name in $(compgen -e); do  # what Slurm tells the job, passed into its sandbox
  case "$name" in
    SLURM_*|SLURMD_*|CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL)
      node+=(--setenv "$name" "${{!name}}");;
  esac
done
for gpu in ${{SLURM_JOB_GPUS//,/ }}; do node+=(--dev-bind-try {device} "/dev/nvidia$gpu"); done
if [ -n "${{SLURM_JOB_GPUS:-}}" ]; then
  for shared in {" ".join(CONTROL_NODES)}; do node+=(--dev-bind-try "$shared" "$shared"); done
fi
setsid /usr/bin/bwrap --args 9 "${{node[@]}}" --json-status-fd 8 -- {command} \\
  9<{args} 8>"$dir/status.json" &
child=$!
init() {{ sed -n 's/.*"child-pid": *\\([0-9]*\\).*/\\1/p' "$dir/status.json" | head -n 1; }}
trap 'pid=$(init); [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null' TERM
wait "$child"
code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
finish "$code"
"""


CONTROL_NODES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


def relay_commands(publish: Relay, where: Where) -> str:
    """socat on the first port of the range it can listen on (it says so on its log, which sed
    reads, unbuffered, keeping only that line); each connection TLS-checked and passed to the
    job's socket. Its port in relay.json. socat runs in a bubblewrap of its own that shows it
    /usr, its two key files and the socket's directory, and no more: the socket is the job's
    (the job may swap it for a link), so a link to another socket of the node (munge, a
    daemon the sandbox hides) leads nowhere. It takes connections only from `allow_from`, if
    the operators named the control plane's address (a neighbour cannot fill its slots)."""
    low, high = publish.ports
    key, trusted = where.relay_file(relay.SERVER_KEY), where.relay_file(relay.CLIENT_CERT)
    allowed = f",range={publish.allow_from}" if publish.allow_from else ""
    # nodelay: a kernel's small replies are not held back (Nagle's 40 ms) on their way out
    options = (
        f",reuseaddr,fork,max-children=256,nodelay{allowed},cert={key},cafile={trusted},verify=1"
    )
    address = f'"OPENSSL-LISTEN:$port"{shlex.quote(options)}'
    directory = str(publish.socket.parent)
    # from the socket's directory: a socket's path must be short (108 bytes), a job's need not
    target = shlex.quote(f"UNIX-CONNECT:{publish.socket.name}")
    walls = shlex.join(
        [
            "/usr/bin/bwrap", "--unshare-all", "--share-net", "--die-with-parent",
            "--ro-bind", "/usr", "/usr", "--ro-bind-try", "/lib", "/lib",
            "--ro-bind-try", "/lib64", "/lib64", "--ro-bind-try", "/etc/ssl", "/etc/ssl",
            "--ro-bind-try", "/etc/pki/tls", "/etc/pki/tls",  # OpenSSL's settings elsewhere,
            "--ro-bind-try", "/etc/crypto-policies", "/etc/crypto-policies",  # the site's
            "--proc", "/proc",  # and whether the node runs FIPS
            "--ro-bind", str(key), str(key), "--ro-bind", str(trusted), str(trusted),
            "--ro-bind", directory, directory, "--chdir", directory, "--dev", "/dev", "--",
        ]
    )  # fmt: skip
    up = '"$dir/relay.up"'
    no_socat = shlex.quote("aifactory: no socat on this node to relay the session")
    no_port = shlex.quote(f"aifactory: no free port from {low} to {high} to relay the session")
    return f"""[ -x /usr/bin/socat ] || {{ echo {no_socat} "($(hostname))"; finish 1; }}
for port in $(seq {int(low)} {int(high)}); do
  rm -f {up}
  {walls} /usr/bin/socat -d -d {address} {target} \\
    2> >(sed -u -n "/ N listening on /w $dir/relay.up") &
  relay=$!
  while kill -0 "$relay" 2>/dev/null && [ ! -s {up} ]; do sleep 0.05; done
  [ -s {up} ] && kill -0 "$relay" 2>/dev/null && break
  relay=
done
[ -n "$relay" ] || {{ echo {no_port} "($(hostname))"; finish 1; }}
record {relay.RECORD} "{{\\"port\\": $port}}"
"""


def _workdir_check(path: str, roots: Sequence[str]) -> str:
    """The user's working directory, as the node sees it: links resolved, inside a directory
    given to projects and the identity's own; or no run."""
    quoted = shlex.quote(path)
    refusal = f"aifactory: the working directory {quoted} does not belong to this project"
    patterns = "|".join(f"{shlex.quote(r)}|{shlex.quote(r.rstrip('/'))}/*" for r in roots)
    return (
        f'real="$(realpath -e {quoted} 2>/dev/null)"\n'
        f'case "$real" in {patterns or "/nowhere/"}) ;; *) echo {refusal}; finish 1;; esac\n'
        f'[ "$(stat -c %u "$real")" = "$(id -u)" ] || {{ echo {refusal}; finish 1; }}\n'
    )
