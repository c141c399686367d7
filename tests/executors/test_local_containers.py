"""Jobs in an image, run by the real OCI runtime through the local executor, and jobs in a
ready Python environment: hostile jobs that look for what is not theirs, under the same rules
as every sandboxed job (its identity, its own directories, its datasets read-only, its GPUs,
no network, the kernel's limits, SIGTERM then SIGKILL).

They need root, runc and tini: where these are missing they skip, saying why, except in CI,
where they fail (the image jobs are refused)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactory.executors.base import Launch, Outcome, Phase
from aifactory.executors.local.executor import LocalExecutor
from aifactory.executors.local.jobdir import read_json
from aifactory.executors.sandbox.container import TINI, find_runtime
from aifactory.software.images import ImportedImage
from tests.executors.conftest import gone
from tests.executors.jobs import (
    at,
    launch,
    own_dir,
    run_to_exit,
    started_pid,
    wait_for_log,
    wait_phase,
)
from tests.executors.sandbox.conftest import requires_root
from tests.software.imagetars import import_busybox

requires_runc = pytest.mark.skipif(
    (os.geteuid() != 0 or find_runtime() is None or not os.access(TINI, os.X_OK))
    and os.environ.get("CI") != "true",
    reason="runs containers: needs root, runc and tini (scripts/install-system-deps.sh --run)",
)
pytestmark = requires_root

CHECKPOINTING = """
step="$AIFACTORY_CHECKPOINT_DIR/step"
if [ -f "$step" ]; then echo "resumed from $(cat "$step")"; exit 0; fi
trap 'echo "step 7" > "$step"; echo checkpointed; exit 143' TERM
echo up
while true; do sleep 0.1; done
"""


@pytest.fixture
def image(tmp_path: Path) -> ImportedImage:
    return import_busybox(tmp_path / "software" / "images", tmp_path)


def in_image(image: ImportedImage, job: Launch) -> Launch:
    return replace(job, image=str(image.dir))


def log(executor: LocalExecutor, job_id: int, attempt: int = 1) -> str:
    """The job's log, less tini's warning when the supervisor's clean-up signal comes after
    the command ended and before tini did (a race: "Child was dead when forwarding signal")."""
    text = executor.jobdir(at(job_id, attempt)).log.read_text()
    return "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("[WARN  tini")
    )


@requires_runc
def test_a_job_runs_in_its_image_as_its_projects_identity(
    executor: LocalExecutor, image: ImportedImage
) -> None:
    script = (
        "id -u; id -g; echo $IMAGE_VAR $HOME; pwd; test -e /usr/bin/python3 || echo no-host; "
        "touch /x 2>/dev/null || echo root-read-only; cat /proc/1/cmdline | tr '\\0' ' '"
    )
    done = run_to_exit(executor, in_image(image, launch(1, ["sh", "-c", script])))

    assert done.outcome is Outcome.SUCCEEDED, log(executor, 1)
    identity = executor.identity(1)
    work = executor.work(1)
    assert log(executor, 1).splitlines() == [
        str(identity.uid),
        str(identity.gid),
        f"from-image {work}",
        str(work),
        "no-host",
        "root-read-only",
        f"/dev/init -g -- sh -c {script} ",
    ]
    record = read_json(executor.jobdir(at(1)).launch) or {}
    assert record["image"] == {"dir": str(image.dir), "digest": image.digest}
    assert record["runtime"] == find_runtime()
    assert sorted(p.name for p in image.rootfs.iterdir()) == sorted(
        ["bin", "dev", "etc", "proc", "root", "sys", "tmp"]
    )  # the runtime's mount points went to an overlay, not into the image


@requires_runc
def test_it_sees_its_own_job_directory_and_no_other(
    executor: LocalExecutor, image: ImportedImage
) -> None:
    other = run_to_exit(executor, launch(1, ["sh", "-c", "echo secret > mine"]))
    assert other.outcome is Outcome.SUCCEEDED
    secret = executor.work(1) / "mine"
    script = f"ls {executor.config.jobs_dir}; cat {secret} 2>/dev/null || echo unseen; echo ok > f"
    done = run_to_exit(executor, in_image(image, launch(2, ["sh", "-c", script])))

    assert done.outcome is Outcome.SUCCEEDED
    assert log(executor, 2) == "2\nunseen\n"
    assert (executor.work(2) / "f").read_text() == "ok\n"


@requires_runc
def test_its_dataset_is_there_read_only(
    executor: LocalExecutor, image: ImportedImage, tmp_path: Path
) -> None:
    version = tmp_path / "datasets" / "corpus" / "v1"
    version.mkdir(parents=True)
    (version / "data.txt").write_text("corpus\n")
    script = f"cat {version}/data.txt; (echo x > {version}/new) 2>/dev/null || echo read-only"
    job = launch(1, ["sh", "-c", script], datasets=[str(version)])
    done = run_to_exit(executor, in_image(image, job))

    assert done.outcome is Outcome.SUCCEEDED
    assert log(executor, 1) == "corpus\nread-only\n"
    assert not (version / "new").exists()


@requires_runc
def test_it_sees_the_device_files_of_its_gpus_only(
    make_executor: Callable[..., LocalExecutor], image: ImportedImage, tmp_path: Path
) -> None:
    devices = tmp_path / "dev"
    devices.mkdir()
    for index in range(4):
        (devices / f"nvidia{index}").write_text(f"gpu {index}\n")
        (devices / f"nvidia{index}").chmod(0o666)
    executor = make_executor(virtual_gpu_devices=devices)
    script = "ls /dev | grep nvidia; cat /dev/nvidia*; echo $CUDA_VISIBLE_DEVICES"
    done = run_to_exit(
        executor, in_image(image, launch(1, ["sh", "-c", script], gpu_ids=["1", "3"]))
    )

    assert done.outcome is Outcome.SUCCEEDED
    assert log(executor, 1) == "nvidia1\nnvidia3\ngpu 1\ngpu 3\n1,3\n"


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback, as the facility's API would be."""
    server = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


@requires_runc
def test_no_network_but_its_own_loopback_unless_open(
    make_executor: Callable[..., LocalExecutor], image: ImportedImage, listener: int
) -> None:
    """The host's loopback, where the facility's API listens, is not a closed job's own."""
    reach = f"nc -w 2 127.0.0.1 {listener} </dev/null 2>/dev/null && echo reached || echo refused"
    script = (
        "ls /sys/class/net; (nc -l -p 7000 -w 5 > /tmp/got &); sleep 0.3; "
        f"echo hello | nc -w 2 127.0.0.1 7000; sleep 0.3; cat /tmp/got; {reach}"
    )
    closed = make_executor()
    done = run_to_exit(closed, in_image(image, launch(1, ["sh", "-c", script])))
    opened = make_executor(open_network=True)
    job = in_image(image, launch(2, ["sh", "-c", reach], network="open"))
    done_open = run_to_exit(opened, job)

    assert done.outcome is Outcome.SUCCEEDED, log(closed, 1)
    assert log(closed, 1) == "lo\nhello\nrefused\n"
    assert done_open.outcome is Outcome.SUCCEEDED, log(opened, 2)
    assert log(opened, 2) == "reached\n"


@requires_runc
def test_a_working_directory_that_links_to_the_facility_is_refused(
    executor: LocalExecutor, image: ImportedImage, tmp_path: Path
) -> None:
    """Judged as opened, as bubblewrap's sources are: the same rule for containers."""
    secret = tmp_path / "facility"
    secret.mkdir(mode=0o700)
    mine = own_dir(executor, tmp_path / "mine")
    (mine / "code").symlink_to(secret)
    job = in_image(image, launch(1, ["true"], working_dir=str(mine / "code")))
    done = run_to_exit(executor, job)

    assert done.outcome is Outcome.FAILED
    assert done.reason is not None
    assert "does not belong to the project's identity aif-p1" in done.reason


@requires_runc
def test_the_kernel_holds_its_memory_and_process_count(
    make_executor: Callable[..., LocalExecutor], image: ImportedImage
) -> None:
    hog = "v=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"
    executor = make_executor()
    done = run_to_exit(executor, in_image(image, launch(1, ["sh", "-c", hog], memory_mb=50)))
    assert (done.outcome, done.reason) == (
        Outcome.FAILED,
        "out of memory: the kernel stopped it at its limit of 50 MB",
    )
    assert "survived" not in log(executor, 1)

    bomb = "for i in $(seq 100); do sleep 5 & done; echo all-started"
    executor = make_executor(pids_max=40)  # the runtime's own threads count too
    stopped = run_to_exit(executor, in_image(image, launch(2, ["sh", "-c", bomb])))
    assert stopped.outcome is Outcome.FAILED
    assert "can't fork" in log(executor, 2)
    assert "all-started" not in log(executor, 2)


@requires_runc
def test_it_gets_the_job_contract(executor: LocalExecutor, image: ImportedImage) -> None:
    script = (
        "echo $AIFACTORY_JOB_ID $AIFACTORY_ATTEMPT $AIFACTORY_GRACE_S; "
        "echo $AIFACTORY_CHECKPOINT_DIR; echo $AIFACTORY_PROGRESS_FILE; "
        "echo saved > $AIFACTORY_CHECKPOINT_DIR/a && echo '{}' >> $AIFACTORY_PROGRESS_FILE"
    )
    done = run_to_exit(executor, in_image(image, launch(1, ["sh", "-c", script])))

    assert done.outcome is Outcome.SUCCEEDED
    work = executor.work(1)
    assert log(executor, 1).splitlines() == [
        "1 1 1",
        str(work / "checkpoints"),
        str(work / "progress.jsonl"),
    ]
    assert (work / "checkpoints" / "a").read_text() == "saved\n"


@requires_runc
def test_a_preempted_job_checkpoints_and_its_next_attempt_resumes(
    executor: LocalExecutor, image: ImportedImage
) -> None:
    executor.start(in_image(image, launch(1, ["sh", "-c", CHECKPOINTING])))
    wait_phase(executor, 1, (Phase.RUNNING,))
    wait_for_log(executor, 1, "up\n")

    executor.preempt(at(1))
    stopped = wait_phase(executor, 1)

    assert (stopped.outcome, stopped.exit_code) == (Outcome.PREEMPTED, 143)
    assert "checkpointed" in log(executor, 1)
    assert gone(started_pid(executor, 1))
    again = run_to_exit(
        executor, in_image(image, launch(1, ["sh", "-c", CHECKPOINTING], attempt=2))
    )
    assert again.outcome is Outcome.SUCCEEDED
    assert log(executor, 1, attempt=2) == "resumed from step 7\n"


@requires_runc
def test_a_job_that_ignores_sigterm_is_killed_whole(
    executor: LocalExecutor, image: ImportedImage
) -> None:
    script = "trap '' TERM; sleep 60 & sleep 60 & echo up; wait"
    executor.start(in_image(image, launch(1, ["sh", "-c", script])))
    wait_for_log(executor, 1, "up\n")

    executor.cancel(at(1))
    done = wait_phase(executor, 1)

    assert done.outcome is Outcome.CANCELLED
    assert done.exit_code == 137  # tini killed, the namespace with it
    assert gone(started_pid(executor, 1))


@requires_runc
def test_a_command_missing_from_the_image_says_so(
    executor: LocalExecutor, image: ImportedImage
) -> None:
    done = run_to_exit(executor, in_image(image, launch(1, ["python", "-c", "1"])))

    assert (done.outcome, done.reason, done.exit_code) == (
        Outcome.FAILED,
        "command not found: python",
        None,
    )


def test_an_image_job_without_the_runtime_is_refused(
    make_executor: Callable[..., LocalExecutor], image: ImportedImage
) -> None:
    executor = make_executor(container_runtime=Path("/nonexistent/runc"))
    done = run_to_exit(executor, in_image(image, launch(1, ["true"])))

    assert done.outcome is Outcome.FAILED
    assert done.reason is not None
    assert done.reason.startswith("the OCI runtime /nonexistent/runc is not installed")
    both = replace(in_image(image, launch(2, ["true"])), environment=str(image.dir))
    refused = run_to_exit(make_executor(), both)
    assert refused.reason == "a job runs in an image or in a Python environment, not both"


def test_a_job_runs_in_its_python_environment_read_only(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    env_dir = tmp_path / "software" / "envs" / "k123"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    (env_dir / "aifactory-env.json").write_text(json.dumps({"base_prefix": sys.base_prefix}))
    code = "import os, sys; print(sys.prefix); print(os.environ['VIRTUAL_ENV'])"
    script = f"python -c {code!r}; touch {env_dir}/x 2>/dev/null || echo read-only"
    job = replace(launch(1, ["sh", "-c", script]), environment=str(env_dir))
    done = run_to_exit(executor, job)

    assert done.outcome is Outcome.SUCCEEDED, log(executor, 1)
    assert log(executor, 1) == f"{env_dir}\n{env_dir}\nread-only\n"
    record = read_json(executor.jobdir(at(1)).launch) or {}
    assert record["environment"] == {"dir": str(env_dir), "key": "k123"}
    unready = replace(launch(2, ["true"]), environment=str(tmp_path))
    refused = run_to_exit(executor, unready)
    assert refused.reason == f"the Python environment {tmp_path} is not ready (not built whole)"


def test_an_environment_naming_the_facilitys_files_as_its_interpreter_is_refused(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    env_dir = tmp_path / "software" / "envs" / "forged"
    env_dir.mkdir(parents=True)
    forged = {"base_prefix": str(executor.config.jobs_dir)}  # the facility's: never a job's
    (env_dir / "aifactory-env.json").write_text(json.dumps(forged))
    job = replace(launch(1, ["true"]), environment=str(env_dir))
    refused = run_to_exit(executor, job)

    assert refused.outcome is Outcome.FAILED
    assert refused.reason == f"the Python environment {env_dir} names the facility's files"
