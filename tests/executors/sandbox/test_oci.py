"""A job's container as an OCI runtime config: the same spec bubblewrap gets, the same rules.
Pure, no process started."""

from __future__ import annotations

from typing import Any

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.job import JobPaths, job_sandbox
from aifactory.executors.sandbox.oci import CLONE_NEWUSER, INIT, container_env, oci_config
from aifactory.executors.sandbox.software import Software
from aifactory.executors.sandbox.spec import Access, Mount, SandboxSpec

ANN = Identity(3_000_007, 3_000_007, "aif-p7")
SOFTWARE = Software(
    mounts=(Mount("/usr", "/usr", Access.READ), Mount("/opt/py", "/opt/py", Access.READ)),
    symlinks=(("usr/bin", "/bin"),),
    etc=("ld.so.cache",),
    etc_open=("resolv.conf", "hosts"),
)
WORK = "/tmp/facility/jobs/5/work"
TMP = "/tmp/facility/jobs/5/attempt-1/tmp"
DATASET = "/data/datasets/corpus/v1"
GPUS = (Mount("/dev/nvidia1", "/dev/nvidia1", Access.DEVICE, "GPU"),
        Mount("/seam/nvidia3", "/dev/nvidia3", Access.DEVICE, "GPU"))  # fmt: skip
FILES = {"/etc/passwd": "/b/passwd", "/etc/group": "/b/group", "/etc/hosts": "/b/hosts"}


def spec(network: Network = Network.NONE, env: dict[str, str] | None = None) -> SandboxSpec:
    return job_sandbox(
        ANN,
        SOFTWARE,
        JobPaths(WORK, TMP),
        datasets=[DATASET],
        devices=GPUS,
        network=network,
        hostname="node-a",
        env={"GREETING": "hallo"} if env is None else env,
    )


def config(made: SandboxSpec | None = None, cgroups_path: str | None = "/aif/k/job-5-1") -> Any:
    return oci_config(
        made or spec(),
        rootfs="/b/rootfs",
        image_env=["PATH=/image/bin", "GREETING=from image", "LANG=C"],
        init="/usr/bin/tini-static",
        command=["python", "train.py"],
        cgroups_path=cgroups_path,
        files=FILES,
        device_numbers={"/dev/nvidia1": (195, 1)},
    )


def mounts(found: Any) -> dict[str, dict[str, Any]]:
    return {m["destination"]: m for m in found["mounts"]}


def test_the_job_runs_as_its_identity_under_tini_with_no_privilege() -> None:
    process = config()["process"]

    assert process["user"] == {"uid": 3_000_007, "gid": 3_000_007, "additionalGids": []}
    assert process["args"] == [INIT, "-g", "--", "python", "train.py"]
    assert process["cwd"] == WORK
    assert process["noNewPrivileges"] is True
    assert set(process["capabilities"]) >= {"bounding", "effective", "permitted"}
    assert all(caps == [] for caps in process["capabilities"].values())
    assert "rlimits" not in process


def test_no_user_namespace_of_its_own_even_without_capabilities() -> None:
    rules = config()["linux"]["seccomp"]["syscalls"]
    by_name = {rule["names"][0]: rule for rule in rules}

    for name in ("unshare", "clone"):
        (arg,) = by_name[name]["args"]
        assert (arg["value"], arg["valueTwo"], arg["op"]) == (
            CLONE_NEWUSER,
            CLONE_NEWUSER,
            "SCMP_CMP_MASKED_EQ",
        )
    assert by_name["clone3"]["action"] == "SCMP_ACT_ERRNO"


def test_the_jobs_variables_win_over_the_images() -> None:
    env = config()["process"]["env"]

    assert env.index("PATH=/image/bin") < env.index("GREETING=hallo")
    assert "GREETING=from image" not in env
    assert f"HOME={WORK}" in env
    assert "LANG=C" in env
    assert container_env([], {"PATH": "/mine"}) == ["PATH=/mine"]
    assert container_env(["A=1=2"], {})[0] == "A=1=2"
    assert container_env([], {})[0].startswith("PATH=/usr/local/sbin")


def test_its_root_is_the_image_read_only_and_nothing_of_the_hosts_software() -> None:
    found = config()
    targets = mounts(found)

    assert found["root"] == {"path": "/b/rootfs", "readonly": True}
    assert found["hostname"] == "node-a"
    assert "/usr" not in targets
    assert "/opt/py" not in targets
    assert targets[INIT]["source"] == "/usr/bin/tini-static"
    assert "ro" in targets[INIT]["options"]


def test_its_own_directories_read_write_datasets_read_only_files_from_the_bundle() -> None:
    found = config()
    targets = mounts(found)
    order = [m["destination"] for m in found["mounts"]]

    assert targets[WORK]["source"] == WORK
    assert targets["/tmp"]["source"] == TMP
    for target in (WORK, "/tmp"):
        assert "rw" in targets[target]["options"]
    assert "ro" in targets[DATASET]["options"]
    for target, source in FILES.items():
        assert (targets[target]["source"], targets[target]["options"][1]) == (source, "ro")
    assert order.index("/tmp") < order.index(WORK)  # a parent first: the job dir is under /tmp
    assert order.index("/dev") < order.index("/dev/nvidia3")
    for mount in found["mounts"]:
        if mount["type"] == "bind":
            assert mount["options"][0] == "bind"  # not rbind: nothing mounted below comes along
            assert {"nosuid", "nodev"} <= set(mount["options"])


def test_its_gpus_only_device_nodes_by_number_and_test_seams_by_bind() -> None:
    found = config()
    linux = found["linux"]

    assert linux["devices"] == [
        {"path": "/dev/nvidia1", "type": "c", "major": 195, "minor": 1, "fileMode": 0o666,
         "uid": 0, "gid": 0}
    ]  # fmt: skip
    assert linux["resources"]["devices"] == [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 195, "minor": 1, "access": "rwm"},
    ]
    assert "/dev/nvidia1" not in mounts(found)
    assert mounts(found)["/dev/nvidia3"]["source"] == "/seam/nvidia3"


def test_namespaces_network_and_the_control_group() -> None:
    closed, opened = config(), config(spec(Network.OPEN))
    kinds = {n["type"] for n in closed["linux"]["namespaces"]}

    assert kinds == {"pid", "ipc", "uts", "mount", "cgroup", "network"}
    assert "network" not in {n["type"] for n in opened["linux"]["namespaces"]}
    assert mounts(opened)["/etc/resolv.conf"]["source"] == "/etc/resolv.conf"
    assert "/etc/resolv.conf" not in mounts(closed)
    assert mounts(closed)["/etc/hosts"]["source"] == "/b/hosts"  # the facility's own
    assert closed["linux"]["cgroupsPath"] == "/aif/k/job-5-1"
    assert "cgroupsPath" not in config(cgroups_path=None)["linux"]


def test_kernel_files_are_masked_as_runc_masks_them() -> None:
    linux = config()["linux"]
    targets = mounts(config())

    assert {"/proc/kcore", "/proc/keys", "/sys/firmware"} <= set(linux["maskedPaths"])
    assert "/proc/sys" in linux["readonlyPaths"]
    assert "ro" in targets["/sys"]["options"]
    assert targets["/sys/fs/cgroup"]["type"] == "tmpfs"  # no other job's control group
    assert config()["ociVersion"] == "1.0.2"
