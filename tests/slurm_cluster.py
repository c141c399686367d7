"""A real one-host Slurm cluster for the tests, in a temporary directory of its own.

It runs, as children of the test process: munged (its own key and socket, so it never meets a
system munged), MariaDB and slurmdbd (Slurm's accounting, without which `sacct` has nothing to
read), slurmctld, and one slurmd per node (`slurmd -N <node>`, each on its own port). Every node
declares GPUs as GRES backed by placeholder device files, so Slurm schedules GPU counts for real
and sets CUDA_VISIBLE_DEVICES in jobs. `SlurmdParameters=config_overrides` lets a two-core
machine declare nodes of 8 CPUs.

`make test` installs Debian's slurm-wlm, munge, slurmdbd and mariadb-server-core when they are
missing (scripts/install-system-deps.sh); if a program is still missing, starting the cluster
raises RuntimeError naming it, and the tests that need the cluster fail (never skip).

Time limits are whole minutes in Slurm and slurmctld enforces them every 30 s or so: a job with
`--time=1` ends TIMEOUT 60 to 90 s after it starts.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.postgres import free_port

SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
CLIENT_TOOLS = ("sbatch", "squeue", "sacct", "sacctmgr", "scontrol", "scancel", "sinfo")
PACKAGE_OF = {
    "munged": "munge",
    "mariadbd": "mariadb-server-core",
    "slurmdbd": "slurmdbd",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    **{tool: "slurm-client" for tool in CLIENT_TOOLS},
}
# Distinct character devices behind the placeholder GPU device files: Slurm accepts only
# character or block devices in gres.conf's File=, and nothing ever opens them.
PLACEHOLDER_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random")
START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    nodes: tuple[str, ...] = ("n1", "n2")
    gpus_per_node: int = 4
    gpu_model: str = "h100"
    cpus_per_node: int = 8
    memory_mb: int = 16_000
    partition: str = "aif"
    name: str = "aiftest"
    min_job_age_s: int = 300  # how long slurmctld (squeue, scontrol) remembers a finished job
    accounting: bool = True  # MariaDB + slurmdbd, so that sacct works
    # The network (topology/tree): the nodes under each leaf switch, `leaf0`, `leaf1`…, joined
    # by a spine when there are several; () declares no topology. One leaf by default: every
    # node in one block places jobs as no topology would.
    leaves: tuple[tuple[str, ...], ...] = (("n1", "n2"),)


@dataclass(frozen=True, slots=True)
class SlurmCluster:
    """A started cluster: `env` is what Slurm's client tools need to reach it."""

    spec: ClusterSpec
    root: Path
    conf: Path
    user: str
    ports: Mapping[str, int]  # by daemon: ctld, dbd, mysql, and each node's slurmd
    env: Mapping[str, str]

    @property
    def conf_env(self) -> dict[str, str]:
        """The variables that point Slurm's tools at this cluster and fix their time format."""
        return {"SLURM_CONF": str(self.conf), "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}

    @property
    def logs_dir(self) -> Path:
        return self.root / "log"

    @property
    def gpu_device_pattern(self) -> str:
        """Where GPU N's (placeholder) device file lies, for the Slurm executor's sandbox."""
        return str(self.root / "dev" / "nvidia{index}")

    @property
    def jobs_dir(self) -> Path:
        """A scratch directory for job scripts and their output, writable by all."""
        return self.root / "jobs"

    def run(
        self, *args: str, check: bool = True, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a client tool (`cluster.run("squeue", "-h")`) against this cluster."""
        done = subprocess.run(
            [_find(args[0]), *args[1:]],
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def logs(self, lines: int = 30) -> str:
        return _tails(self.logs_dir, lines)


@dataclass
class _Daemons:
    """The daemons started so far, in start order, each with its console log."""

    logs_dir: Path
    env: dict[str, str]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> None:
        with open(self.logs_dir / f"{name}.console", "ab") as console:
            proc = subprocess.Popen(
                [*_die_with_parent(), *argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.logs_dir,  # a crash dumps its core beside its log, not in the checkout
            )
        self.procs.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


@contextmanager
def running_cluster(spec: ClusterSpec | None = None) -> Iterator[SlurmCluster]:
    """Start a cluster, wait until every node is idle, yield it; stop it and its jobs after."""
    spec = spec or ClusterSpec()
    _check_programs(spec)
    root = Path(tempfile.mkdtemp(prefix="aifactory-slurm-"))
    root.chmod(0o755)  # munged insists that every directory above its socket be searchable
    cluster = _lay_out(spec, root)
    daemons = _Daemons(cluster.logs_dir, dict(cluster.env))
    try:
        try:
            _start(cluster, daemons)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(
                f"the test Slurm cluster did not start: {exc}\n{cluster.logs()}"
            ) from exc
        yield cluster
    finally:
        _stop(cluster, daemons)
        shutil.rmtree(root, ignore_errors=True)


def _lay_out(spec: ClusterSpec, root: Path) -> SlurmCluster:
    for sub in (
        "munge",
        "db/data",
        "state",
        "log",
        "dev",
        "jobs",
        *(f"spool/{n}" for n in spec.nodes),
    ):
        (root / sub).mkdir(parents=True)
        for made in (root / sub, *(root / sub).parents):
            if made.is_relative_to(root):
                made.chmod(0o755)  # whatever the umask: munged wants its socket's path open
    (root / "jobs").chmod(0o1777)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    for index in range(spec.gpus_per_node):
        device = PLACEHOLDER_DEVICES[index % len(PLACEHOLDER_DEVICES)]
        (root / "dev" / f"nvidia{index}").symlink_to(device)
    user = getpass.getuser()
    ports = {name: free_port() for name in ("ctld", "dbd", "mysql", *spec.nodes)}
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(spec, root, ports, user))
    (root / "gres.conf").write_text(gres_conf(spec, root))
    (root / "topology.conf").write_text(topology_conf(spec))
    (root / "cgroup.conf").write_text(cgroup_conf())
    dbd_conf = root / "slurmdbd.conf"
    dbd_conf.write_text(slurmdbd_conf(root, ports, user))
    dbd_conf.chmod(0o600)  # slurmdbd refuses a config others can read
    env = {k: v for k, v in os.environ.items() if not _is_slurm_variable(k)}
    env["PATH"] = os.pathsep.join([env.get("PATH", "/usr/bin:/bin"), *SBIN_DIRS])
    cluster = SlurmCluster(spec, root, conf, user, ports, env)
    env.update(cluster.conf_env)
    return cluster


def _is_slurm_variable(name: str) -> bool:
    """Settings a surrounding Slurm job or user would pass on to the tools (SBATCH_*, …)."""
    prefixes = ("SLURM_", "SBATCH_", "SQUEUE_", "SACCT_", "SINFO_", "SCANCEL_", "SALLOC_")
    return name.startswith(prefixes)


def slurm_conf(spec: ClusterSpec, root: Path, ports: Mapping[str, int], user: str) -> str:
    munge_socket = root / "munge" / "munge.socket"
    if spec.accounting:
        accounting = [
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageHost=127.0.0.1",
            f"AccountingStoragePort={ports['dbd']}",
            f"AccountingStoragePass={munge_socket}",  # the munged that signs for slurmdbd
            "AccountingStorageTRES=gres/gpu",
            "AccountingStoreFlags=job_comment",
            "JobCompType=jobcomp/none",
        ]
    else:
        accounting = [
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'log' / 'jobcomp.txt'}",
        ]
    gres = f"gpu:{spec.gpu_model}:{spec.gpus_per_node}" if spec.gpus_per_node else "(null)"
    nodes = [
        f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={ports[name]} "
        f"CPUs={spec.cpus_per_node} RealMemory={spec.memory_mb} Gres={gres} State=UNKNOWN"
        for name in spec.nodes
    ]
    lines = [
        f"ClusterName={spec.name}",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={ports['ctld']}",
        f"SlurmUser={user}",
        f"SlurmdUser={user}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd-%n.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=1000",  # else a job without --mem takes a whole node's memory
        "GresTypes=gpu",
        "ProctrackType=proctrack/cgroup",  # a job's processes, daemonised or not, end with it
        "TaskPlugin=task/cgroup,task/affinity",  # its cores and memory, held by the kernel
        "SlurmdParameters=config_overrides",
        "JobAcctGatherType=jobacct_gather/linux",
        "JobAcctGatherFrequency=task=2",
        *accounting,
        *(["TopologyPlugin=topology/tree"] if spec.leaves else []),
        "MpiDefault=none",
        "ReturnToService=2",
        "KillWait=2",
        "OverTimeLimit=0",
        "InactiveLimit=0",
        "MessageTimeout=5",
        f"MinJobAge={spec.min_job_age_s}",
        "SchedulerParameters=sched_interval=1",
        *nodes,
        f"PartitionName={spec.partition} Nodes={','.join(spec.nodes)} Default=YES "
        "MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def cgroup_conf() -> str:
    """Slurm's containment: every process of a job in the job's control group (so `kill` of
    the group ends daemonised ones too), its cores and memory constrained. Devices are not: the
    placeholder GPU files stand for /dev/null and friends, and the sandbox's own /dev holds
    only the job's GPUs anyway."""
    lines = [
        "CgroupPlugin=autodetect",
        "ConstrainCores=yes",
        "ConstrainRAMSpace=yes",
        "ConstrainSwapSpace=yes",
        "ConstrainDevices=no",
    ]
    return "\n".join(lines) + "\n"


def topology_conf(spec: ClusterSpec) -> str:
    leaves = [f"leaf{i}" for i in range(len(spec.leaves))]
    lines = [
        f"SwitchName={s} Nodes={','.join(n)}" for s, n in zip(leaves, spec.leaves, strict=True)
    ]
    if len(leaves) > 1:
        lines.append(f"SwitchName=spine Switches={','.join(leaves)}")
    return "\n".join(lines) + "\n"


def gres_conf(spec: ClusterSpec, root: Path) -> str:
    if not spec.gpus_per_node:
        return ""
    last = spec.gpus_per_node - 1
    files = root / "dev" / (f"nvidia[0-{last}]" if last else "nvidia0")
    return f"NodeName={','.join(spec.nodes)} Name=gpu Type={spec.gpu_model} File={files}\n"


def slurmdbd_conf(root: Path, ports: Mapping[str, int], user: str) -> str:
    lines = [
        "AuthType=auth/munge",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        "DbdHost=localhost",
        "DbdAddr=127.0.0.1",
        f"DbdPort={ports['dbd']}",
        f"SlurmUser={user}",
        f"LogFile={root / 'log' / 'slurmdbd.log'}",
        f"PidFile={root / 'slurmdbd.pid'}",
        "StorageType=accounting_storage/mysql",
        "StorageHost=127.0.0.1",
        f"StoragePort={ports['mysql']}",
        "StorageUser=slurm",  # the server runs with --skip-grant-tables: any name will do
        "StorageLoc=slurm_acct_db",
    ]
    return "\n".join(lines) + "\n"


def _start(cluster: SlurmCluster, daemons: _Daemons) -> None:
    root, spec = cluster.root, cluster.spec
    ports = cluster.ports
    munge = root / "munge"
    daemons.start(
        "munged",
        [
            _find("munged"),
            "--foreground",
            f"--socket={munge / 'munge.socket'}",
            f"--key-file={munge / 'munge.key'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={cluster.logs_dir / 'munged.log'}",
        ],
    )
    _wait(daemons, "munged's socket", (munge / "munge.socket").exists)
    if spec.accounting:
        daemons.start("mariadbd", _mariadbd_argv(root, ports["mysql"]))
        _wait(daemons, "MariaDB", lambda: _accepts(ports["mysql"]))
        daemons.start("slurmdbd", [_find("slurmdbd"), "-D"])
        _wait(daemons, "slurmdbd", lambda: _accepts(ports["dbd"]))
    daemons.start("slurmctld", [_find("slurmctld"), "-D"])
    _wait(daemons, "slurmctld", lambda: cluster.run("sinfo", "-h", check=False).returncode == 0)
    for node in spec.nodes:
        daemons.start(f"slurmd-{node}", [_find("slurmd"), "-D", "-N", node])
    _wait(daemons, "every node to be idle", lambda: _all_idle(cluster))


def _mariadbd_argv(root: Path, port: int) -> list[str]:
    db = root / "db"
    argv = [
        _find("mariadbd"),
        "--no-defaults",  # must come first
        f"--datadir={db / 'data'}",
        f"--socket={db / 'mariadb.sock'}",
        f"--pid-file={db / 'mariadb.pid'}",
        f"--log-error={root / 'log' / 'mariadb.log'}",
        "--bind-address=127.0.0.1",
        f"--port={port}",
        "--skip-grant-tables",  # no system tables to install: a throwaway server, local only
        "--skip-name-resolve",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=8M",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
    ]
    if os.geteuid() == 0:
        argv.append("--user=root")  # mariadbd refuses root unless told
    return argv


def _all_idle(cluster: SlurmCluster) -> bool:
    done = cluster.run("sinfo", "-h", "-N", "-o", "%N %T", check=False)
    states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
    return done.returncode == 0 and all(states.get(n) == "idle" for n in cluster.spec.nodes)


def _stop(cluster: SlurmCluster, daemons: _Daemons) -> None:
    """Cancel every job, give them a moment to end, then stop the daemons and any leftover."""
    if any(name == "slurmctld" for name, _ in daemons.procs):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.run("scancel", "--full", f"--user={cluster.user}", check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                left = cluster.run("squeue", "-h", "-o", "%i", check=False)
                if left.returncode != 0 or not left.stdout.strip():
                    break
                time.sleep(0.2)
    daemons.stop()
    _kill_leftovers(str(cluster.conf))


def _kill_leftovers(conf: str) -> None:
    """slurmstepd and the jobs under it are not our children: find them by their SLURM_CONF."""
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("SLURM_CONF") == conf:
                proc.kill()


def _wait(daemons: _Daemons, what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        daemons.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting {START_TIMEOUT_S:.0f} s for {what}")
        time.sleep(0.1)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tails(logs_dir: Path, lines: int) -> str:
    parts = []
    for path in sorted(logs_dir.glob("*")):
        if path.is_file() and path.stat().st_size:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} (last {len(tail)} lines)\n" + "\n".join(tail))
    return "\n".join(parts)


def _find(program: str) -> str:
    found = _which(program)
    if found is None:
        raise RuntimeError(_missing_message([program]))
    return found


def _check_programs(spec: ClusterSpec) -> None:
    needed = ["munged", "slurmctld", "slurmd", *CLIENT_TOOLS]
    if spec.accounting:
        needed += ["mariadbd", "slurmdbd"]
    missing = [p for p in needed if _which(p) is None]
    if missing:
        raise RuntimeError(_missing_message(missing))


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN_DIRS))


def _missing_message(programs: list[str]) -> str:
    packages = sorted({PACKAGE_OF.get(p, p) for p in programs})
    return (
        f"Slurm test cluster: {', '.join(programs)} not found: run 'make test' (or "
        f"scripts/install-system-deps.sh), which installs Debian's {' '.join(packages)}"
    )


def _die_with_parent() -> list[str]:
    """Have a daemon killed when the test process dies, however it dies (util-linux setpriv)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def main() -> None:
    """`python -m tests.slurm_cluster`: the test cluster for trying the Slurm executor by hand
    (README, "Running on a Slurm cluster"); it runs until Ctrl-C."""

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with running_cluster() as cluster:
        print(f"export SLURM_CONF={cluster.conf}", flush=True)
        print(f"# nodes {', '.join(cluster.spec.nodes)}; logs in {cluster.logs_dir}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
