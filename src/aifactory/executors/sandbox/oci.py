"""The OCI runtime configuration of a job that runs in an image. Pure: a spec in, a dict out.

The same `SandboxSpec` that bubblewrap gets says what the container holds, so a job in an
image lives by the same rules as any other (DESIGN §8): its project's identity (never root: no
capability, no new privileges, no new user namespace), its own job directory, /tmp and
checkpoint directories read-write, its granted datasets read-only, its GPUs and nothing else
of /dev, no network but loopback unless its policy is open. Only its software differs: the
image's root file system (read-only) takes the place of the host's /usr and the facility's
Python, which a container is not given.

The command runs under tini (`INIT`, bound from the host): PID 1 of the container, which
forwards a SIGTERM to the command's process group (`-g`) and reaps orphans; its end ends the
PID namespace. The container joins the attempt's own control group (`cgroups_path`), which the
supervisor has already made with the job's memory, pids and CPU limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.spec import Access, Mount, SandboxSpec

OCI_VERSION = "1.0.2"
INIT = "/dev/init"  # on /dev's tmpfs: binding it there writes nothing into the image
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLONE_NEWUSER = 0x10000000
EPERM, ENOSYS = 1, 38
OPEN_NETWORK_FILES = ("/etc/hosts", "/etc/resolv.conf")  # the host's, with an open network

# As `runc spec` makes them: kernel files a job has no business reading or writing.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def oci_config(
    spec: SandboxSpec,
    *,
    rootfs: str,
    image_env: Sequence[str],
    init: str,
    command: Sequence[str],
    cgroups_path: str | None,
    files: Mapping[str, str] | None = None,
    device_numbers: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The config.json of `spec`'s container: root file system `rootfs` (read-only), tini from
    the host path `init`, the facility's files from `files` (target → host path, written by
    the caller) and, for each GPU whose source is a character device, its (major, minor) in
    `device_numbers` (a source not there, such as the test seam's plain file, is bound)."""
    numbers = device_numbers or {}
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in _namespaces(spec.network)],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "devices": _devices(spec.devices, numbers),
        "resources": {"devices": _device_rules(spec.devices, numbers)},
        "seccomp": _seccomp(),
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {
        "ociVersion": OCI_VERSION,
        "process": _process(spec, image_env, command),
        "root": {"path": rootfs, "readonly": True},
        "hostname": spec.hostname,
        "mounts": _mounts(spec, init, files or {}, numbers),
        "linux": linux,
    }


def _process(spec: SandboxSpec, image_env: Sequence[str], command: Sequence[str]) -> Any:
    identity = spec.identity
    return {
        "terminal": False,
        "user": {"uid": identity.uid, "gid": identity.gid, "additionalGids": []},
        "args": [INIT, "-g", "--", *command],
        "env": container_env(image_env, spec.env),
        "cwd": spec.cwd,
        "capabilities": {name: [] for name in CAPABILITY_SETS},
        "noNewPrivileges": True,
    }


def container_env(image_env: Sequence[str], job_env: Mapping[str, str]) -> list[str]:
    """The image's variables, then the job's over them (its PATH too, if it has one)."""
    merged: dict[str, str] = {}
    for entry in image_env:
        name, _, value = entry.partition("=")
        merged[name] = value
    merged.update(job_env)
    merged.setdefault("PATH", DEFAULT_PATH)
    return [f"{name}={value}" for name, value in merged.items()]


def _namespaces(network: Network) -> list[str]:
    found = ["pid", "ipc", "uts", "mount", "cgroup"]
    return [*found, "network"] if network is Network.NONE else found


# ---- mounts --------------------------------------------------------------------------------


def _mounts(
    spec: SandboxSpec,
    init: str,
    files: Mapping[str, str],
    numbers: Mapping[str, tuple[int, int]],
) -> list[dict[str, Any]]:
    """The kernel's file systems, then the spec's directories (a parent before what lies in
    it), the facility's files, the GPUs that are not device nodes, and tini."""
    own = sorted((*spec.writable, *spec.datasets), key=_depth)
    return [
        *_kernel_mounts(),
        *(_bind(m.source, m.target, m.access) for m in own),
        *(_bind(files[target], target, Access.READ) for target, _ in spec.files),
        *(_bind(m.source, m.target, m.access) for m in _open_network_files(spec)),
        *(_bind(m.source, m.target, Access.WRITE) for m in spec.devices if m.source not in numbers),
        _bind(init, INIT, Access.READ),
    ]


def _bind(source: str, target: str, access: Access) -> dict[str, Any]:
    """Not recursive: whatever is mounted below a source stays out of the container."""
    mode = "ro" if access is Access.READ else "rw"
    return {
        "destination": target,
        "type": "bind",
        "source": source,
        "options": ["bind", mode, "nosuid", "nodev"],
    }


def _open_network_files(spec: SandboxSpec) -> Iterable[Mount]:
    if spec.network is not Network.OPEN:
        return ()
    return [m for m in spec.software if m.target in OPEN_NETWORK_FILES]


def _depth(mount: Mount) -> int:
    return len(PurePosixPath(mount.target).parts)


def _kernel_mount(target: str, kind: str, *options: str) -> dict[str, Any]:
    return {"destination": target, "type": kind, "source": kind, "options": list(options)}


def _kernel_mounts() -> list[dict[str, Any]]:
    return [
        _kernel_mount("/proc", "proc", "nosuid", "noexec", "nodev"),
        _kernel_mount("/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _kernel_mount(
            "/dev/pts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"
        ),
        _kernel_mount("/dev/shm", "tmpfs", "nosuid", "nodev", "mode=1777"),  # counted as its memory
        _kernel_mount("/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _kernel_mount("/sys", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        _kernel_mount("/sys/fs/cgroup", "tmpfs", "nosuid", "noexec", "nodev", "ro"),  # no peeking
    ]


# ---- devices -------------------------------------------------------------------------------


def _devices(
    devices: Iterable[Mount], numbers: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """The GPUs' device nodes, made by the runtime in the container's own /dev."""
    return [
        {
            "path": m.target,
            "type": "c",
            "major": major,
            "minor": minor,
            "fileMode": 0o666,
            "uid": 0,
            "gid": 0,
        }
        for m, (major, minor) in _numbered(devices, numbers)
    ]


def _device_rules(
    devices: Iterable[Mount], numbers: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Nothing but its own GPUs (and the runtime's defaults: null, zero, tty…)."""
    allowed = [
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for _, (major, minor) in _numbered(devices, numbers)
    ]
    return [{"allow": False, "access": "rwm"}, *allowed]


def _numbered(
    devices: Iterable[Mount], numbers: Mapping[str, tuple[int, int]]
) -> list[tuple[Mount, tuple[int, int]]]:
    return [(m, numbers[m.source]) for m in devices if m.source in numbers]


# What bubblewrap's --disable-userns gives: no user namespace of the job's own, in which it
# would be root and could mount. clone3 cannot be filtered by its flags: ENOSYS makes the C
# library fall back to clone, whose flags can.
def _no_new_user_namespace(syscall: str) -> dict[str, Any]:
    masked = {
        "index": 0,
        "value": CLONE_NEWUSER,
        "valueTwo": CLONE_NEWUSER,
        "op": "SCMP_CMP_MASKED_EQ",
    }
    return {"names": [syscall], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "args": [masked]}


def _seccomp() -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            _no_new_user_namespace("unshare"),
            _no_new_user_namespace("clone"),
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
        ],
    }
