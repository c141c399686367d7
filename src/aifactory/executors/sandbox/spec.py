"""What a job sees, as a value, and the bubblewrap arguments that make it so. Pure.

A `SandboxSpec` says everything about one attempt's world: the identity it runs as, what is
mounted where (read-only software and granted datasets, its own directories read-write, its
GPUs' device nodes), the small files the facility writes for it (/etc/passwd with only its own
user, /etc/hosts), its network, hostname, environment and working directory. `bwrap_options` turns
it into bubblewrap's argument list; how a mount's source is named — an open file descriptor
(the local supervisor, which runs as root and opens each source before it drops privileges) or a
path (a Slurm batch script, which runs as the tenant) — is the `Binder`'s business.

Invariants:
- Namespaces: user, mount, PID, IPC, UTS, cgroup, and network unless the policy is `open`; no
  further user namespaces inside (`--disable-userns`); the whole sandbox dies with its parent.
- Mount order: by depth, parents first (the job's /tmp before a data directory that happens to
  lie under the host's /tmp), and at one depth software, the job's read-write directories,
  datasets, devices; a dataset under the working directory is mounted after it, read-only over
  it. Then the facility's files. Everything not mounted does not exist for the job.
- The environment is exactly `env` (`--clearenv`): nothing of the caller's leaks in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.identity import Identity


class Access(enum.StrEnum):
    READ = "ro"
    WRITE = "rw"
    DEVICE = "dev"


@dataclass(frozen=True, slots=True)
class Mount:
    source: str  # on the host
    target: str  # in the sandbox
    access: Access
    what: str = "software"  # for messages: "working directory", "dataset"…
    users: bool = False  # the user named it: it must be the identity's own (FdBinder checks)


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    identity: Identity
    software: tuple[Mount, ...]  # read-only: /usr, the interpreter, the selected /etc files
    symlinks: tuple[tuple[str, str], ...]  # (target, link): /bin → usr/bin on merged-/usr hosts
    writable: tuple[Mount, ...]  # the job's directory, its /tmp, its working directory
    datasets: tuple[Mount, ...]  # read-only, the granted versions
    devices: tuple[Mount, ...]  # the GPUs it was given (their device nodes)
    files: tuple[tuple[str, str], ...]  # (target, content): /etc/passwd, /etc/group, /etc/hosts
    network: Network
    hostname: str
    cwd: str
    env: Mapping[str, str] = field(default_factory=dict)
    protected: tuple[str, ...] = ()  # facility paths a mount the user named may not reach
    workdir_roots: tuple[str, ...] = ()  # where a mount the user named may lie at all

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return (*self.software, *self.writable, *self.datasets, *self.devices)


class Binder(Protocol):
    """Names sources for bubblewrap: by open descriptor or by path."""

    def mount(self, mount: Mount) -> list[str]: ...

    def data(self, target: str, content: str) -> list[str]: ...


class PathBinder:
    """Sources by path: for a sandbox started by the identity itself (a Slurm batch script).
    Files are taken from `file_paths` (target → where the caller wrote their content). With
    `lenient_software`, software missing on a node is left out rather than failing the job
    (nodes may have less of /etc than the control plane)."""

    def __init__(self, file_paths: Mapping[str, str], *, lenient_software: bool = False) -> None:
        self.file_paths = file_paths
        self.lenient_software = lenient_software

    def mount(self, mount: Mount) -> list[str]:
        flag = {Access.READ: "--ro-bind", Access.WRITE: "--bind", Access.DEVICE: "--dev-bind"}
        lenient = self.lenient_software and mount.what == "software"
        return [flag[mount.access] + ("-try" if lenient else ""), mount.source, mount.target]

    def data(self, target: str, content: str) -> list[str]:  # noqa: ARG002 - written already
        return ["--ro-bind", self.file_paths[target], target]


NAMESPACES = (
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",  # no TIOCSTI into a terminal outside
)


def bwrap_options(spec: SandboxSpec, binder: Binder) -> list[str]:
    """bubblewrap's options for `spec`'s world; the command follows them after `--`. They may
    be handed over through `--args FD` (no length limit); the command may not."""
    args = [*NAMESPACES]
    if spec.network is Network.NONE:
        args.append("--unshare-net")
    args += ["--hostname", spec.hostname]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm"]
    args += ["--ro-bind", "/sys", "/sys", "--tmpfs", "/sys/fs/cgroup"]  # no peeking at others
    for target, link in spec.symlinks:
        args += ["--symlink", target, link]
    for mount in sorted(spec.mounts, key=_depth):  # a parent first: /tmp before /tmp/x
        args += binder.mount(mount)
    for target, content in spec.files:
        args += binder.data(target, content)
    args += ["--chdir", spec.cwd, "--clearenv"]
    for name, value in spec.env.items():
        args += ["--setenv", name, value]
    return args


def _depth(mount: Mount) -> int:
    return len(PurePosixPath(mount.target).parts)


# ---- the facility's files in every sandbox -------------------------------------------------


def passwd(identity: Identity, home: str) -> str:
    """Only root, the job's own user and nobody: whoami, getpass and ~ work, nobody else shows."""
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{identity.name}:x:{identity.uid}:{identity.gid}:aifactory job:{home}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )


def group(identity: Identity) -> str:
    return f"root:x:0:\n{identity.name}:x:{identity.gid}:\nnogroup:x:65534:\n"


def hosts(hostname: str) -> str:
    """Loopback under the job's own hostname too: gloo and NCCL resolve it to bind to."""
    return f"127.0.0.1 localhost {hostname}\n::1 localhost ip6-localhost ip6-loopback\n"


def facility_files(
    identity: Identity, home: str, hostname: str, network: Network
) -> tuple[tuple[str, str], ...]:
    files = [("/etc/passwd", passwd(identity, home)), ("/etc/group", group(identity))]
    if network is Network.NONE:
        files.append(("/etc/hosts", hosts(hostname)))
    return tuple(files)


def identity_env(identity: Identity, home: str) -> dict[str, str]:
    return {"HOME": home, "USER": identity.name, "LOGNAME": identity.name, "TMPDIR": "/tmp"}


def same_path(paths: Iterable[str], access: Access) -> tuple[Mount, ...]:
    """Mounts of host paths at the same path inside: the paths a job is told stay true."""
    return tuple(Mount(p, p, access) for p in paths)


# ---- as JSON, in the attempt's launch record -----------------------------------------------


def to_record(spec: SandboxSpec) -> dict[str, Any]:
    def mounts(found: Iterable[Mount]) -> list[dict[str, Any]]:
        return [
            {"source": m.source, "target": m.target, "access": m.access.value}
            | ({"what": m.what} if m.what != "software" else {})
            | ({"users": True} if m.users else {})
            for m in found
        ]

    return {
        "identity": {
            "uid": spec.identity.uid,
            "gid": spec.identity.gid,
            "name": spec.identity.name,
        },
        "software": mounts(spec.software),
        "symlinks": [list(pair) for pair in spec.symlinks],
        "writable": mounts(spec.writable),
        "datasets": mounts(spec.datasets),
        "devices": mounts(spec.devices),
        "files": [list(pair) for pair in spec.files],
        "network": spec.network.value,
        "hostname": spec.hostname,
        "cwd": spec.cwd,
        "env": dict(spec.env),
        "protected": list(spec.protected),
        "workdir_roots": list(spec.workdir_roots),
    }


def from_record(record: Mapping[str, Any]) -> SandboxSpec:
    def mounts(key: str) -> tuple[Mount, ...]:
        return tuple(
            Mount(
                str(m["source"]),
                str(m["target"]),
                Access(m["access"]),
                str(m.get("what", "software")),
                bool(m.get("users", False)),
            )
            for m in record[key]
        )

    who = record["identity"]
    return SandboxSpec(
        identity=Identity(int(who["uid"]), int(who["gid"]), str(who["name"])),
        software=mounts("software"),
        symlinks=tuple((str(a), str(b)) for a, b in record["symlinks"]),
        writable=mounts("writable"),
        datasets=mounts("datasets"),
        devices=mounts("devices"),
        files=tuple((str(a), str(b)) for a, b in record["files"]),
        network=Network(record["network"]),
        hostname=str(record["hostname"]),
        cwd=str(record["cwd"]),
        env={str(k): str(v) for k, v in record["env"].items()},
        protected=tuple(str(p) for p in record.get("protected", ())),
        workdir_roots=tuple(str(p) for p in record.get("workdir_roots", ())),
    )
