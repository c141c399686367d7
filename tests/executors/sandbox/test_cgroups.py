"""Control groups per attempt: on this host's cgroup v1 for real, and on v2 as the files it
writes (these machines have no v2 controllers to give: the unified hierarchy holds none)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from aifactory.executors.sandbox import cgroups
from tests.executors.sandbox.conftest import requires_root


@requires_root
def test_a_group_on_this_host_limits_and_is_emptied_and_removed() -> None:
    version = cgroups.detect()
    assert version in ("v1", "v2")
    group = cgroups.job_group(version, cgroups.group_name("test", os.getpid(), 1))
    group.create(cgroups.Limits(memory_bytes=64 * 2**20, pids_max=16, cpus=(0,)))
    join = group.join_files()

    def enter() -> None:
        for path in join:
            with open(path, "w") as procs:
                procs.write("0")

    sleeper = subprocess.Popen(["sh", "-c", "setsid sleep 60 & exec sleep 60"], preexec_fn=enter)
    try:
        deadline = 50
        while len(group.pids()) < 2 and deadline:
            deadline -= 1
            subprocess.run(["sleep", "0.02"], check=True)
        assert len(group.pids()) == 2  # the daemonised one too
        assert cgroups.kill_all(group) == []
        assert sleeper.wait(timeout=5) < 0
        assert "cpu_time_s" in group.usage()
    finally:
        group.remove()
    assert group.pids() == []


def test_v2_writes_its_limits_and_hands_the_controllers_down(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "aifactory" / "key").mkdir(parents=True)
    for level in (root, root / "aifactory", root / "aifactory" / "key"):
        (level / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    name = cgroups.group_name("key", 7, 2)
    group = cgroups.CgroupV2(root, name)
    group.create(cgroups.Limits(memory_bytes=512 * 2**20, pids_max=100, cpus=(1, 3)))
    made = root / name
    assert (made / "memory.max").read_text() == str(512 * 2**20)
    assert (made / "memory.swap.max").read_text() == "0"
    assert (made / "pids.max").read_text() == "100"
    assert (made / "cpuset.cpus").read_text() == "1,3"
    for level in (root, root / "aifactory", root / "aifactory" / "key"):
        assert (level / "cgroup.subtree_control").read_text() == "+memory +pids +cpuset +cpu"
    assert group.join_files() == [str(made / "cgroup.procs")]
    (made / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (made / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (made / "memory.peak").write_text(str(300 * 2**20))
    assert group.oom_kills() == 1
    assert group.usage() == {"cpu_time_s": 2.5, "peak_memory_mb": 300.0}


def test_without_a_writable_cgroup_file_system_there_is_none(tmp_path: Path) -> None:
    assert cgroups.detect(tmp_path) is None
