"""The sandbox as a value and as bubblewrap's options: pure, no process started."""

from __future__ import annotations

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.job import JobPaths, job_sandbox
from aifactory.executors.sandbox.software import Software
from aifactory.executors.sandbox.spec import (
    Access,
    Mount,
    PathBinder,
    SandboxSpec,
    bwrap_options,
    from_record,
    to_record,
)

ANN = Identity(3_000_007, 3_000_007, "aif-p7")
SOFTWARE = Software(
    mounts=(Mount("/usr", "/usr", Access.READ), Mount("/opt/py", "/opt/py", Access.READ)),
    symlinks=(("usr/bin", "/bin"),),
    etc=("ld.so.cache",),
    etc_open=("resolv.conf",),
)
WORK = "/tmp/facility/jobs/5/work"


FILES = {"/etc/passwd": "P", "/etc/group": "G", "/etc/hosts": "H"}


def spec(
    datasets: tuple[str, ...] = ("/tmp/facility/datasets/corpus/v1",),
    network: Network = Network.NONE,
) -> SandboxSpec:
    return job_sandbox(
        ANN,
        SOFTWARE,
        JobPaths(WORK, "/tmp/facility/jobs/5/attempt-1/tmp"),
        datasets=datasets,
        network=network,
        hostname="node-a",
        env={"HOME": "/root", "GREETING": "hallo"},
    )


def options(made: SandboxSpec) -> list[str]:
    return bwrap_options(made, PathBinder(FILES))


def pairs(found: list[str], flag: str) -> list[tuple[str, str]]:
    return [(found[i + 1], found[i + 2]) for i, a in enumerate(found) if a == flag]


def test_a_job_gets_namespaces_no_further_user_namespaces_and_dies_with_its_parent() -> None:
    found = options(spec())
    for flag in (
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--unshare-net",
    ):
        assert flag in found  # fmt: skip
    assert found[found.index("--hostname") + 1] == "node-a"


def test_an_open_network_keeps_the_hosts_and_its_name_resolution() -> None:
    closed, opened = options(spec()), options(spec(network=Network.OPEN))
    assert "--unshare-net" not in opened
    assert ("/etc/resolv.conf", "/etc/resolv.conf") in pairs(opened, "--ro-bind")
    assert ("/etc/resolv.conf", "/etc/resolv.conf") not in pairs(closed, "--ro-bind")
    assert ("H", "/etc/hosts") in pairs(closed, "--ro-bind")  # the facility's: loopback only


def test_parents_are_mounted_before_what_lies_in_them() -> None:
    """The job's /tmp comes before a data directory that lies under the host's /tmp, and a
    dataset under the working directory is mounted read-only over it."""
    made = spec(datasets=(WORK + "/data",))
    found = options(made)
    targets = [found[i + 2] for i, a in enumerate(found) if a in ("--ro-bind", "--bind")]
    assert targets.index("/tmp") < targets.index(WORK) < targets.index(WORK + "/data")
    assert (WORK + "/data", WORK + "/data") in pairs(found, "--ro-bind")
    assert (WORK, WORK) in pairs(found, "--bind")


def test_the_environment_is_exactly_the_jobs_with_its_own_identity() -> None:
    found = options(spec())
    clear = found.index("--clearenv")
    env = {found[i + 1]: found[i + 2] for i, a in enumerate(found) if a == "--setenv"}
    assert all(i > clear for i, a in enumerate(found) if a == "--setenv")
    assert env["GREETING"] == "hallo"
    assert (env["HOME"], env["USER"], env["TMPDIR"]) == (WORK, "aif-p7", "/tmp")  # not root's
    assert found[found.index("--chdir") + 1] == WORK


def test_only_its_own_user_is_in_its_passwd() -> None:
    files = dict(spec().files)
    users = [line.split(":")[0] for line in files["/etc/passwd"].splitlines()]
    assert users == ["root", "aif-p7", "nobody"]
    assert f"aif-p7:x:3000007:3000007:aifactory job:{WORK}:" in files["/etc/passwd"]


def test_a_working_directory_outside_its_own_is_mounted_and_checked() -> None:
    made = job_sandbox(ANN, SOFTWARE, JobPaths(WORK, "/t", "/projects/nlp/../nlp/code"))
    (named,) = [m for m in made.writable if m.what == "working directory"]
    assert (named.target, named.users) == ("/projects/nlp/code", True)
    inside = job_sandbox(ANN, SOFTWARE, JobPaths(WORK, "/t", WORK + "/sub"))
    assert all(m.what != "working directory" for m in inside.writable)  # already its own


def test_software_missing_on_a_node_may_be_left_out_but_data_may_not() -> None:
    found = bwrap_options(spec(), PathBinder(FILES, lenient_software=True))
    assert ("/usr", "/usr") in pairs(found, "--ro-bind-try")
    assert ("/tmp/facility/datasets/corpus/v1",) * 2 in pairs(found, "--ro-bind")


def test_the_record_round_trips() -> None:
    made = spec()
    assert from_record(to_record(made)) == made
