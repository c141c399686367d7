"""What the Slurm executor submits, as text: the sandbox is always there, the user's words
never become shell code outside it, and a working directory is checked on the node."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from aifactory.executors.base import Attempt, Launch, NodeSlice
from aifactory.executors.slurm import relay
from aifactory.executors.slurm.node_enter import sandbox_settings
from aifactory.executors.slurm.script import Relay, Where, batch_script, sbatch_options


def a_launch(command: list[str], working_dir: str | None = None) -> Launch:
    return Launch(
        Attempt(5, 2), command, {}, working_dir, 600, {"n1": NodeSlice(["0"], [0, 1], 512)}
    )


def test_the_command_runs_in_bubblewrap_with_the_facilitys_options(tmp_path: Path) -> None:
    where = Where(tmp_path / "attempt-2", tmp_path / "work")
    script = batch_script(a_launch(["python3", "train.py"]), where, pids_max=64)
    assert "setsid /usr/bin/bwrap --args 9" in script
    assert f"9<{where.args}" in script
    assert "-- python3 train.py" in script
    assert "ulimit -u 64" in script
    options = sbatch_options(
        a_launch(["true"]), where, instance="abc", gpu_models={}, partition=None,
        account=None, warn_s=10,
    )  # fmt: skip
    assert f"--output={where.own}/output.log" in options
    assert f"--chdir={where.own}" in options  # the identity's own; bubblewrap sets the job's


def test_no_word_of_the_user_runs_outside_the_sandbox(tmp_path: Path) -> None:
    """A command or working directory full of shell syntax stays one quoted word: the script
    parses, and checking the directory on the node runs nothing of it."""
    marker = tmp_path / "pwned"
    evil = f"/nowhere/$(touch {marker})`touch {marker}`;touch {marker}"
    where = Where(tmp_path / "attempt-2", tmp_path / "work")
    script = batch_script(
        a_launch(["sh", "-c", f"touch {marker}"], evil),
        where,
        checked_dir=evil,
        workdir_roots=[str(tmp_path)],
    )
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    check = node_check(script)
    prelude = "finish() { echo finished $1; exit $1; }\n"
    ran = subprocess.run(["bash", "-c", prelude + check], capture_output=True, text=True)
    assert ran.returncode == 1
    assert "does not belong to this project" in ran.stdout
    assert not marker.exists()


def test_a_working_directory_of_the_identitys_own_passes_the_nodes_check(tmp_path: Path) -> None:
    where = Where(tmp_path / "attempt-2", tmp_path / "work")
    mine = tmp_path / "project"
    mine.mkdir()
    script = batch_script(
        a_launch(["true"], str(mine)), where, checked_dir=str(mine), workdir_roots=[str(tmp_path)]
    )
    check = node_check(script)
    ran = subprocess.run(["bash", "-c", "finish() { exit 7; }\n" + check + "\necho ok"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert (ran.returncode, ran.stdout) == (0, "ok\n")  # tmp_path is ours
    assert os.stat(mine).st_uid == os.geteuid()
    outside = batch_script(a_launch(["true"], "/tmp"), where, checked_dir="/tmp",
                           workdir_roots=[str(tmp_path)])  # fmt: skip
    ran = subprocess.run(["bash", "-c", "finish() { exit 7; }\n" + node_check(outside)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert ran.returncode == 7


def node_check(script: str) -> str:
    """The lines that check the user's working directory on the node."""
    start = script.index('real="$(realpath')
    return "\n".join(script[start:].split("\n")[:3])


def test_a_served_socket_gets_its_relay_first_and_others_none(tmp_path: Path) -> None:
    """The relay listens on the first free port of the range, from the socket's directory (a
    socket's path is short), trusting the attempt's facility certificate only; a job that
    serves nothing runs no relay."""
    where = Where(tmp_path / "attempt-2", tmp_path / "work")
    socket = tmp_path / "a dir" / ".notebook.sock"
    publish = Relay(socket, (42100, 42109), "10.1.0.5/32")
    script = batch_script(a_launch(["true"]), where, publish=publish)
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    assert "for port in $(seq 42100 42109)" in script
    walls = f"--ro-bind '{tmp_path}/a dir' '{tmp_path}/a dir' --chdir '{tmp_path}/a dir'"
    assert walls in script  # its own bubblewrap: that directory, /usr and its keys only
    assert "UNIX-CONNECT:.notebook.sock" in script
    assert f"range=10.1.0.5/32,cert={where.attempt_dir}/{relay.SERVER_KEY}," in script
    assert f"cafile={where.attempt_dir}/{relay.CLIENT_CERT},verify=1" in script
    assert script.index("socat") < script.index("/usr/bin/bwrap --args")  # before the job
    assert "socat" not in batch_script(a_launch(["true"]), where)


def test_the_sandboxs_environment_and_directory_are_read_back_from_its_options() -> None:
    options = "\0".join(
        ["--unshare-pid", "--setenv", "A", "1", "--chdir", "/w", "--setenv", "B", "x y", ""]
    )
    assert sandbox_settings(options.encode()) == ({"A": "1", "B": "x y"}, "/w")
    assert sandbox_settings(b"--setenv\0A") == ({}, "/")  # cut short: nothing half-read
