"""Who a job runs as: every project has an unprivileged POSIX identity of its own (DESIGN §8).

Why per project and not per user: the project is the tenant. It owns the jobs, their
directories and checkpoints, its datasets and its allocations, and its members share them (a
colleague's fine-tune reads the checkpoints of a pretraining job another member started). A
project's jobs never see another project's files; within a project there is nothing to hide.

Modes (`IdentityConfig.mode`):
- `project`: project N runs as uid = gid = `uid_base + N`, named `aif-p<N>`. The facility makes
  the user and its group (useradd/groupadd, no home, no login shell) the first time a job of the
  project starts, and otherwise checks that the existing ones carry exactly those numbers.
- `directory`: the identity comes from the site's directory (LDAP/SSSD or /etc/passwd) by a name
  template such as `prj-{project}`; the facility never makes one. For a Slurm cluster whose
  nodes share a directory.
- `shared`: a facility that does not run as root cannot switch identity, so its jobs run under
  its own uid — still inside the sandbox, which hides every file of the facility's. `aifactory
  up` says so when it starts. A development shape only.

Never root: an identity with uid or gid 0 is refused whatever the mode.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

IdentityMode = Literal["project", "directory", "shared"]
DEFAULT_UID_BASE = 3_000_000  # above the usual user ranges and /etc/subuid's 100000-165535
NAME_PREFIX = "aif-p"

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class IdentityError(RuntimeError):
    """The project's identity cannot be had: a clash, a missing directory entry, no useradd."""


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    name: str


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    mode: IdentityMode = "project"
    uid_base: int = DEFAULT_UID_BASE
    name_template: str = "prj-{project}"  # directory mode: {project} (name) and {id}

    @classmethod
    def for_this_process(cls, **overrides: object) -> IdentityConfig:
        """`project` when the facility is root (it can switch identity), else `shared`."""
        made = cls(**overrides)  # type: ignore[arg-type]
        if os.geteuid() != 0 and made.mode != "shared":
            return cls(mode="shared", uid_base=made.uid_base, name_template=made.name_template)
        return made


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)


class Identities:
    """The identity of each project, made or looked up once and then remembered."""

    def __init__(self, config: IdentityConfig, runner: Runner = _run) -> None:
        self.config = config
        self._runner = runner
        self._known: dict[int, Identity] = {}
        self._lock = threading.Lock()

    def of(self, project_id: int, project: str | None = None) -> Identity:
        with self._lock:
            found = self._known.get(project_id)
            if found is None:
                found = _not_root(self._resolve(project_id, project))
                self._known[project_id] = found
            return found

    def _resolve(self, project_id: int, project: str | None) -> Identity:
        if self.config.mode == "shared":
            me = pwd.getpwuid(os.geteuid())
            return Identity(me.pw_uid, me.pw_gid, me.pw_name)
        if self.config.mode == "directory":
            name = self.config.name_template.format(project=project or "", id=project_id)
            return _looked_up(name)
        return self._made(project_id)

    def _made(self, project_id: int) -> Identity:
        number = self.config.uid_base + project_id
        wanted = Identity(number, number, f"{NAME_PREFIX}{project_id}")
        if _existing(wanted) is None:
            self._create(wanted)
        found = _existing(wanted)
        if found != wanted:
            raise IdentityError(
                f"user {wanted.name} should have uid and gid {number} but has "
                f"{found.uid if found else '-'}/{found.gid if found else '-'}: "
                "another program made it, or the uid range is taken (see --sandbox-uid-base)"
            )
        return wanted

    def _create(self, identity: Identity) -> None:
        group = [
            "groupadd", "--force", "--gid", str(identity.gid), identity.name
        ]  # fmt: skip
        user = [
            "useradd", "--uid", str(identity.uid), "--gid", str(identity.gid),
            "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
            "--no-user-group", "--no-log-init", "--comment", "aifactory project", identity.name,
        ]  # fmt: skip
        for argv in (group, user):
            done = self._runner(argv)
            if done.returncode not in (0, 9):  # 9: the name exists already (checked after)
                raise IdentityError(f"{argv[0]} {identity.name} failed: {done.stderr.strip()}")


def _existing(identity: Identity) -> Identity | None:
    try:
        user = pwd.getpwnam(identity.name)
    except KeyError:
        return None
    return Identity(user.pw_uid, user.pw_gid, user.pw_name)


def _looked_up(name: str) -> Identity:
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise IdentityError(f"the directory has no user {name!r} for this project") from None
    return Identity(user.pw_uid, user.pw_gid, user.pw_name)


def _not_root(identity: Identity) -> Identity:
    if identity.uid == 0 or identity.gid == 0:
        raise IdentityError(f"{identity.name} is root: a job never runs as root")
    return identity


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
