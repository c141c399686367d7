"""Building Python environments for real: pip in the sandbox, against a registry on loopback,
as the project's identity; what comes out is read-only, the facility's, and records what it
holds. Hostile builds try to read the facility's files and to run for ever."""

from __future__ import annotations

import ast
import json
import os
import platform
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from aifactory.domain.environments import environment_key, parse_requirements
from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.identity import Identities, Identity, IdentityConfig
from aifactory.executors.sandbox.software import Software
from aifactory.software.envbuild import (
    MARKER,
    BuildError,
    BuildLimits,
    BuiltEnvironment,
    Interpreter,
    build_environment,
    build_sandbox,
    find_python,
    read_environment,
)
from tests.software.conftest import SECRET, Registry, requires_sandbox

LONELY_PROJECT_ID = 71  # no other test runs as this project


@pytest.fixture(scope="module")
def interpreter() -> Interpreter:
    return find_python(None)


class Builder:
    """Builds environments as the facility would: key from the requirements file, directory
    under the data directory's software/envs/."""

    def __init__(
        self, registry: Registry, interpreter: Interpreter, identity: Identity, software: Software
    ) -> None:
        self.registry = registry
        self.interpreter = interpreter
        self.identity = identity
        self.software = software
        self.envs = registry.data_dir / "software" / "envs"
        self.log = registry.data_dir / "build.log"

    def env_dir(self, text: str) -> Path:
        key = environment_key(
            parse_requirements(text),
            python=self.interpreter.version.rsplit(".", 1)[0],  # "3.11", as asked
            platform=self.interpreter.platform,
            index=self.registry.url,
        )
        return self.envs / key

    def build(self, text: str, timeout_s: float = 120) -> BuiltEnvironment:
        return build_environment(
            self.env_dir(text),
            parse_requirements(text),
            interpreter=self.interpreter,
            index=self.registry.url,
            identity=self.identity,
            software=self.software,
            log=self.log,
            timeout_s=timeout_s,
        )


@pytest.fixture(scope="module")
def builder(
    registry: Registry, interpreter: Interpreter, identity: Identity, software: Software
) -> Builder:
    return Builder(registry, interpreter, identity, software)


@pytest.fixture(scope="module")
def built(builder: Builder) -> dict[str, BuiltEnvironment]:
    return {v: builder.build(f"aifprobe=={v}\n") for v in ("1.0", "2.0")}


def run_in(env_dir: Path, code: str) -> str:
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@requires_sandbox
def test_each_environment_has_the_version_it_asked_for(
    builder: Builder, built: dict[str, BuiltEnvironment]
) -> None:
    for version in built:
        env_dir = builder.env_dir(f"aifprobe=={version}")
        assert run_in(env_dir, "import aifprobe; print(aifprobe.VERSION)") == version
        assert run_in(env_dir, "import sys; print(sys.prefix)") == str(env_dir)


@requires_sandbox
def test_what_it_holds_is_recorded_in_its_marker(
    builder: Builder, built: dict[str, BuiltEnvironment], interpreter: Interpreter
) -> None:
    first = built["1.0"]
    env_dir = builder.env_dir("aifprobe==1.0")
    assert first.key == env_dir.name
    assert first.requirements == ("aifprobe==1.0",)
    assert [(p["name"], p["version"], p["license"]) for p in first.packages] == [
        ("aifprobe", "1.0", "MIT")
    ]
    assert (first.python, first.base_prefix) == (interpreter.version, sys.base_prefix)
    assert first.size_bytes > 0
    assert read_environment(env_dir) == first
    record = json.loads((env_dir / MARKER).read_text())
    assert {"key", "requirements", "python", "base_prefix", "packages", "built_at"} <= set(record)


@requires_sandbox
def test_an_environment_is_the_facilitys_and_read_only(
    builder: Builder, built: dict[str, BuiltEnvironment], identity: Identity
) -> None:
    env_dir = builder.env_dir("aifprobe==2.0")
    for path in [env_dir, *env_dir.rglob("*")]:
        found = path.lstat()
        if stat.S_ISLNK(found.st_mode):
            continue
        assert found.st_uid == os.geteuid(), path
        assert found.st_mode & 0o7222 == 0, path  # nobody writes; no set-id bit
        assert found.st_mode & 0o444 == 0o444, path
    site = next(env_dir.glob("lib/python*/site-packages"))
    tried = subprocess.run(
        ["touch", str(site / "aifprobe" / "added.py")],
        user=identity.uid,
        group=identity.gid,
        extra_groups=[],
        capture_output=True,
        check=False,
    )
    assert tried.returncode != 0  # not even the project that asked for it changes it


@requires_sandbox
def test_the_same_requirements_give_the_same_environment_built_once(
    builder: Builder, built: dict[str, BuiltEnvironment]
) -> None:
    written_otherwise = "# the same, said otherwise\nAIFPROBE == 1.0   # pinned\naifprobe==1.0\n"
    assert builder.env_dir(written_otherwise) == builder.env_dir("aifprobe==1.0")
    assert builder.build(written_otherwise) == built["1.0"]  # found, not built again
    assert builder.env_dir("aifprobe==2.0") != builder.env_dir("aifprobe==1.0")


@requires_sandbox
def test_a_failed_build_says_what_pip_said_and_leaves_no_environment(builder: Builder) -> None:
    env_dir = builder.env_dir("aifprobe==9.9")
    with pytest.raises(BuildError, match=r"No matching distribution found for aifprobe==9\.9"):
        builder.build("aifprobe==9.9")
    assert not env_dir.exists()
    assert not env_dir.with_name(f".{env_dir.name}.build").exists()
    assert "No matching distribution" in builder.log.read_text()  # the log is kept


@requires_sandbox
def test_an_incomplete_environment_left_by_a_crash_is_built_again(
    builder: Builder, built: dict[str, BuiltEnvironment], identity: Identity
) -> None:
    """Whatever the build left, a marker it forged included: only the facility's counts."""
    env_dir = builder.env_dir("aifprobe>=1,<2")
    env_dir.mkdir(parents=True)
    (env_dir / "half-written.py").write_text("")
    forged = (builder.env_dir("aifprobe==1.0") / MARKER).read_text()
    (env_dir / MARKER).write_text(
        forged.replace(builder.env_dir("aifprobe==1.0").name, env_dir.name)
    )
    for path in (env_dir, env_dir / MARKER):
        os.chown(path, identity.uid, identity.gid)
    if identity.uid != os.geteuid():  # a facility that is not root cannot tell them apart
        assert read_environment(env_dir) is None
    found = builder.build("aifprobe>=1,<2")
    assert [p["version"] for p in found.packages] == ["1.0"]
    assert not (env_dir / "half-written.py").exists()


@requires_sandbox
def test_a_build_never_sees_the_facilitys_files(builder: Builder, identity: Identity) -> None:
    """The package's own build code reads what it can of the facility's data directory: the
    file is readable by the identity outside a sandbox, and inside it does not exist."""
    secret = builder.registry.secret
    if os.geteuid() == 0:
        outside = subprocess.run(
            ["cat", str(secret)], user=identity.uid, group=identity.gid, extra_groups=[],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert outside.stdout == SECRET
    builder.build("aifhostile")
    seen = run_in(builder.env_dir("aifhostile"), "import aifhostile; print(aifhostile.SEEN)")
    assert ast.literal_eval(seen) == ["secret: FileNotFoundError", "data dir: software"]


@requires_sandbox
def test_a_build_that_runs_too_long_is_stopped_with_all_it_started(builder: Builder) -> None:
    """Built as a project of its own, so that any process of that identity left is the build's."""
    alone = Identities(IdentityConfig.for_this_process()).of(LONELY_PROJECT_ID)
    endless = Builder(builder.registry, builder.interpreter, alone, builder.software)
    env_dir = endless.env_dir("aifendless")
    with pytest.raises(BuildError, match="longer than 5 s"):
        endless.build("aifendless", timeout_s=5)
    assert not env_dir.exists()
    if alone.uid != os.geteuid():
        assert _processes_of(alone.uid) == []


DYING_FACILITY = """
import sys
from pathlib import Path
from aifactory.executors.sandbox.identity import Identities, IdentityConfig
from aifactory.executors.sandbox.software import host_software
from aifactory.software.envbuild import build_environment, find_python
build_environment(
    Path(sys.argv[1]), ["aifendless"], interpreter=find_python(None), index=sys.argv[2],
    identity=Identities(IdentityConfig.for_this_process()).of(int(sys.argv[3])),
    software=host_software(), log=Path(sys.argv[4]),
)
"""


@requires_sandbox
def test_a_build_ends_with_the_facility_that_started_it(builder: Builder, tmp_path: Path) -> None:
    alone = Identities(IdentityConfig.for_this_process()).of(LONELY_PROJECT_ID)
    if alone.uid == os.geteuid():
        pytest.skip("tells the build's processes by their identity: run as root")
    env_dir, log = builder.envs / "dying", tmp_path / "build.log"
    args = [str(env_dir), builder.registry.url, str(LONELY_PROJECT_ID), str(log)]
    facility = subprocess.Popen([sys.executable, "-c", DYING_FACILITY, *args])
    try:
        assert wait_for(lambda: "Preparing metadata" in _text(log))  # the backend is running
    finally:
        facility.kill()
        facility.wait()
    assert wait_for(lambda: not _processes_of(alone.uid))
    assert read_environment(env_dir) is None  # incomplete, to be removed by the next build


def wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _processes_of(uid: int) -> list[int]:
    found = psutil.process_iter(["uids"])
    return [p.pid for p in found if p.info["uids"] is not None and uid in p.info["uids"]]


def test_the_build_sandbox_opens_only_the_environment_and_its_tmp(
    tmp_path: Path, interpreter: Interpreter, identity: Identity, software: Software
) -> None:
    env_dir, scratch = tmp_path / "envs" / "k", tmp_path / "envs" / ".k.build"
    spec = build_sandbox(
        env_dir, scratch, interpreter=interpreter, identity=identity, software=software, index=None
    )
    assert {(m.source, m.target) for m in spec.writable} == {
        (str(env_dir), str(env_dir)),
        (str(scratch), "/tmp"),
    }
    assert spec.datasets == spec.devices == ()
    assert spec.network is Network.OPEN  # it has to reach the registry
    assert spec.identity == identity
    assert set(spec.env) == {"PATH", "LANG", "PIP_CACHE_DIR", "HOME", "USER", "LOGNAME", "TMPDIR"}


def test_the_facilitys_python_is_found_and_asked_for_its_version() -> None:
    found = find_python(None)
    assert found.version == platform.python_version()
    assert found.base_prefix == Path(sys.base_prefix)
    assert found.path.exists()
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert find_python(minor) == found  # the facility's own, whatever else the PATH holds
    with pytest.raises(BuildError, match=r"Python 3\.99 is not installed"):
        find_python("3.99")
    with pytest.raises(BuildError, match="not a Python version"):
        find_python("3.11; rm -rf /")


@requires_sandbox
def test_a_package_cannot_forge_what_the_environment_records(
    builder: Builder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What it holds is read from the packages' metadata, never by running the environment;
    a marker the build wrote is gone before the seal makes the build's files root's: a
    control plane killed between the seal and its own marker leaves no environment."""
    from aifactory.software import envbuild

    built = builder.build("aifliar==1.0\n")
    (liar,) = built.packages
    assert (liar["name"], liar["version"]) == ("aifliar", "1.0")
    assert liar["license"] is not None
    assert len(liar["license"]) <= 200  # a licence text is not kept whole
    assert built.base_prefix == sys.base_prefix

    again = builder.env_dir("aifliar==1.0 ; python_version >= '3'\n")
    monkeypatch.setattr(envbuild, "_write_marker", lambda *_: None)  # killed right there
    envbuild.build_environment(
        again,
        parse_requirements("aifliar==1.0 ; python_version >= '3'\n"),
        interpreter=builder.interpreter,
        index=builder.registry.url,
        identity=builder.identity,
        software=builder.software,
        log=builder.log,
    )
    assert not (again / MARKER).exists()
    assert read_environment(again) is None  # not whole: built again, never run


@requires_sandbox
def test_a_build_is_held_to_its_memory(builder: Builder, tmp_path: Path) -> None:
    """pip and the packages' build code run in a control group of the build's own: a build
    that takes all it can is stopped at its limit, not the control plane's host."""
    from aifactory.executors.sandbox import cgroups

    if cgroups.detect() is None and os.environ.get("CI") != "true":
        pytest.skip("no control group this process may make (not root)")
    env_dir = builder.env_dir("aifgreedy==1.0\n")
    with pytest.raises(BuildError):
        build_environment(
            env_dir,
            ["aifgreedy==1.0"],
            interpreter=builder.interpreter,
            index=builder.registry.url,
            identity=builder.identity,
            software=builder.software,
            log=tmp_path / "greedy.log",
            limits=BuildLimits(env_dir.name, memory_mb=256),
            timeout_s=120,
        )
    assert "ran out of memory (its limit: 256 MB)" in (tmp_path / "greedy.log").read_text()
    assert not env_dir.exists()
