"""The software a job is given, read-only: the system's /usr, a few files of /etc, the
facility's Python (its interpreter, its virtual environment and an editable install's source)
and whatever an operator adds (`--sandbox-software /opt/cuda`).

Never the facility's own files: a software path that holds the data directory, the jobs
directory, the datasets or the facility's CLI configuration (or lies inside one of them) is
refused when the facility starts (`SandboxConfigError`), so an operator cannot open a hole by
adding `/` or a checkout that holds `.aifactory/`.

/etc is not mounted whole: only the files programs need to run (the dynamic loader's cache,
certificates, time zone, alternatives, name-service switch…); users, groups and hosts are
written by the facility for each job (`spec.facility_files`), so no job learns the names of
other tenants' identities. /etc/resolv.conf and /etc/hosts come in only with an open network.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.spec import Access, Mount

TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "protocols",
    "services",
    "ssl",
    "timezone",
)
ETC_OPEN_NETWORK = ("hosts", "resolv.conf")


class SandboxConfigError(ValueError):
    """The sandbox as configured would expose the facility, or cannot work on this host."""


@dataclass(frozen=True, slots=True)
class Software:
    mounts: tuple[Mount, ...]  # read-only, /usr first
    symlinks: tuple[tuple[str, str], ...]  # (target, link), e.g. ("usr/bin", "/bin")
    etc: tuple[str, ...]  # names under /etc that exist here
    etc_open: tuple[str, ...]  # …and those an open network adds

    def for_network(self, network: Network) -> tuple[Mount, ...]:
        names = (*self.etc, *(self.etc_open if network is Network.OPEN else ()))
        return (*self.mounts, *(Mount(f"/etc/{n}", f"/etc/{n}", Access.READ) for n in names))


def host_software(
    extra: Sequence[Path] = (), *, python: bool = True, protected: Iterable[Path] = ()
) -> Software:
    """This host's system software, the facility's Python (`python`) and `extra` paths."""
    mounts = [Mount("/usr", "/usr", Access.READ)]
    symlinks: list[tuple[str, str]] = []
    for name in TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            symlinks.append((os.readlink(path), str(path)))
        elif path.is_dir():
            mounts.append(Mount(str(path), str(path), Access.READ))
    paths = [*(facility_python() if python else []), *(Path(p) for p in extra)]
    checked = check_software(paths, list(protected))
    mounts += [Mount(str(p), str(p), Access.READ) for p in checked]
    etc = tuple(n for n in ETC if os.path.lexists(f"/etc/{n}"))
    etc_open = tuple(n for n in ETC_OPEN_NETWORK if os.path.lexists(f"/etc/{n}"))
    return Software(tuple(mounts), tuple(symlinks), etc, etc_open)


def facility_python() -> list[Path]:
    """The interpreter the facility runs on, its virtual environment, and the source trees an
    editable install points at (the `.pth` files' directories): what `--python` jobs need."""
    found = [Path(sys.base_prefix).resolve(), Path(sys.prefix)]
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for pth in sorted((site / "site-packages").glob("*.pth")):
        for line in pth.read_text(errors="replace").splitlines():
            entry = line.strip()
            if entry.startswith("/") and Path(entry).is_dir():
                found.append(Path(entry))
    return _outermost(found)


def check_software(paths: Sequence[Path], protected: Sequence[Path]) -> list[Path]:
    """Absolute, existing, outermost paths; refused if one holds or lies in a protected one."""
    checked = []
    for given in paths:
        if not given.is_absolute():
            raise SandboxConfigError(f"software path {given} is not absolute")
        if not given.exists():
            raise SandboxConfigError(f"software path {given} does not exist")
        real = given.resolve()
        for secret in (p.resolve() for p in protected):
            if real == secret or secret.is_relative_to(real) or real.is_relative_to(secret):
                raise SandboxConfigError(
                    f"software path {given} would show jobs the facility's {secret}: "
                    "give a narrower path"
                )
        checked.append(given)
    return _outermost(checked)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Without duplicates and without paths inside another one of the list, in order."""
    unique = list(dict.fromkeys(Path(os.path.normpath(p)) for p in paths))
    return [p for p in unique if not any(p != q and p.is_relative_to(q) for q in unique)]
