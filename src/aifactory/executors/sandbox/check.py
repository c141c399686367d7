"""Can this host make a job's sandbox? Asked once as the facility starts, so that a missing
bubblewrap or a kernel without unprivileged user namespaces stops `aifactory up` with the
cause and the fix, rather than failing every job.

The probe runs `/bin/true` in a real sandbox as an unprivileged identity (nobody, where the
facility is root) and makes and removes a control group. It runs in a process of its own
(`python -m aifactory.executors.sandbox.check`): placing mounts on the stage moves the calling
process into a mount namespace of its own, which the control plane must not be in.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifactory.executors.sandbox import cgroups
from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.job import JobPaths, job_sandbox
from aifactory.executors.sandbox.launcher import BWRAP, spawn
from aifactory.executors.sandbox.software import host_software
from aifactory.executors.sandbox.stage import Stage

NO_USERNS = (
    "No permissions to creat",  # bubblewrap's "No permissions to creating new namespace"
    "setting up uid map",
    "Creating new namespace failed",
    "Operation not permitted",
)


class SandboxUnavailable(RuntimeError):
    """This host cannot make the sandbox jobs must run in; the message says why and the fix."""


@dataclass(frozen=True, slots=True)
class SandboxReport:
    bwrap: str  # its version
    cgroups: str | None  # v1, v2, or None (memory by watchdog, no pids limit)
    identities: bool  # jobs run under identities of their own (the facility is root)

    def describe(self) -> str:
        who = "each project's own identity" if self.identities else "the facility's own uid"
        limits = f"cgroup {self.cgroups}" if self.cgroups else "no cgroup (memory watchdog)"
        return f"bubblewrap {self.bwrap}, jobs run as {who}, {limits}"


def check(timeout_s: float = 60.0) -> SandboxReport:
    """Run the probe in a process of its own; raise SandboxUnavailable if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "aifactory.executors.sandbox.check"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )
    try:
        found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SandboxUnavailable(f"the sandbox check failed: {done.stderr.strip()}") from None
    if not found.get("ok"):
        raise SandboxUnavailable(str(found.get("error")))
    return SandboxReport(str(found["bwrap"]), found.get("cgroups"), bool(found["identities"]))


def probe() -> dict[str, Any]:
    if not os.access(BWRAP, os.X_OK):
        return _failed(
            f"bubblewrap is not installed ({BWRAP}): every job runs in its sandbox. Install it: "
            "apt-get install bubblewrap (make run does)"
        )
    version = subprocess.run([BWRAP, "--version"], capture_output=True, text=True, check=False)
    identities = os.geteuid() == 0
    error = _try_sandbox(identities)
    if error is not None:
        return _failed(error)
    return {
        "ok": True,
        "bwrap": version.stdout.split()[-1] if version.stdout.split() else "?",
        "cgroups": _try_cgroup(),
        "identities": identities,
    }


def _try_sandbox(identities: bool) -> str | None:
    nobody = pwd.getpwnam("nobody") if identities else pwd.getpwuid(os.geteuid())
    identity = Identity(nobody.pw_uid, nobody.pw_gid, nobody.pw_name)
    with tempfile.TemporaryDirectory(prefix="aifactory-check-") as scratch:
        work, tmp = Path(scratch) / "work", Path(scratch) / "tmp"
        for path in (work, tmp):
            path.mkdir()
            os.chown(path, identity.uid, identity.gid)
        spec = job_sandbox(identity, host_software(), JobPaths(str(work), str(tmp)))
        with open(Path(scratch) / "log", "w+b") as log:
            stage = Stage.enter() if identities else None
            sandbox = spawn(spec, ["/bin/true"], log=log, stage=stage)
            code = sandbox.wait(timeout=30)
            log.seek(0)
            said = log.read().decode(errors="replace").strip()
    if code == 0:
        return None
    if any(sign in said for sign in NO_USERNS):
        return (
            "this kernel does not let unprivileged users make user namespaces, which the "
            f"sandbox needs ({said}): allow them (sysctl kernel.unprivileged_userns_clone=1; on "
            "Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0)"
        )
    return f"bubblewrap could not make a sandbox: {said or f'exit code {code}'}"


def _try_cgroup() -> str | None:
    version = cgroups.detect()
    if version is None:
        return None
    group = cgroups.job_group(version, f"{cgroups.PREFIX}/check-{os.getpid()}")
    try:
        group.create(cgroups.Limits(memory_bytes=None, pids_max=64, cpus=()))
    except OSError:
        group.remove()
        return None
    group.remove()
    return version


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def main() -> int:
    try:
        found = probe()
    except Exception as exc:  # reported, not raised: the caller reads one JSON line
        found = _failed(f"the sandbox check failed: {exc}")
    print(json.dumps(found))
    return 0 if found["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
