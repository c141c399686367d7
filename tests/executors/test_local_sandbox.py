"""The local executor's sandbox, piece by piece, with real supervisors and real jobs: its
network, its GPUs' device nodes (through the test seam), its datasets read-only, its own /tmp,
a working directory that is a link to what it may not have, and what the kernel counted."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactory.executors.base import Outcome
from aifactory.executors.local.executor import LocalExecutor
from tests.executors.jobs import at, launch, own_dir, python, run_to_exit

CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    print("reached")
except OSError as exc:
    print("refused:", exc.strerror)
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback, as the facility's API would be."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    thread = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    thread.start()
    yield port
    server.close()


def test_no_network_unless_open_and_open_only_where_allowed(
    make_executor: Callable[..., LocalExecutor], listener: int
) -> None:
    closed = make_executor()
    done = run_to_exit(closed, launch(1, [*python(CONNECT), str(listener)]))
    assert closed.log_path(1).read_text().startswith("refused:")
    refused = run_to_exit(closed, launch(2, ["true"], network="open"))
    assert (refused.outcome, refused.reason) == (
        Outcome.FAILED,
        "this facility gives jobs no network (network: none)",
    )
    opened = make_executor(open_network=True)
    done = run_to_exit(opened, launch(3, [*python(CONNECT), str(listener)], network="open"))
    assert done.outcome is Outcome.SUCCEEDED
    assert opened.log_path(3).read_text() == "reached\n"


def test_a_job_sees_the_device_nodes_of_its_gpus_only(
    make_executor: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    devices = tmp_path / "dev"
    devices.mkdir()
    for index in range(4):
        (devices / f"nvidia{index}").write_text(f"gpu {index}\n")
        (devices / f"nvidia{index}").chmod(0o666)  # as device nodes are
    executor = make_executor(virtual_gpu_devices=devices)
    script = "ls /dev | grep nvidia; cat /dev/nvidia*; echo $CUDA_VISIBLE_DEVICES"
    done = run_to_exit(executor, launch(1, ["sh", "-c", script], gpu_ids=["1", "3"]))
    assert done.outcome is Outcome.SUCCEEDED
    assert executor.log_path(1).read_text() == "nvidia1\nnvidia3\ngpu 1\ngpu 3\n1,3\n"
    none = run_to_exit(executor, launch(2, ["sh", "-c", "ls /dev | grep -c nvidia"], gpu_ids=[]))
    assert none.exit_code == 1  # grep found nothing: no GPU, no NVIDIA node


def test_a_dataset_is_there_read_only_and_nothing_else_of_the_data_root(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    root = tmp_path / "datasets"
    version, other = root / "corpus" / "v1", root / "secret" / "v1"
    for path in (version, other):
        path.mkdir(parents=True)
        (path / "data.txt").write_text(f"{path.parent.name}\n")
        for made in (path, path.parent, path / "data.txt"):  # as registering makes them
            made.chmod(0o755 if made.is_dir() else 0o444)
    script = (
        f"cat {version}/data.txt; (echo x > {version}/new) 2>/dev/null || echo read-only; "
        f"cat {other}/data.txt 2>/dev/null || echo no-other; ls {root}"
    )
    done = run_to_exit(executor, launch(1, ["sh", "-c", script], datasets=[str(version)]))
    assert done.outcome is Outcome.SUCCEEDED
    assert executor.log_path(1).read_text() == "corpus\nread-only\nno-other\ncorpus\n"
    assert not (version / "new").exists()


def test_its_tmp_is_its_own_and_goes_with_the_attempt(executor: LocalExecutor) -> None:
    host_file = Path("/tmp") / f"aifactory-test-{os.getpid()}"
    host_file.write_text("the host's /tmp\n")
    try:
        script = f"ls /tmp; test -e {host_file} || echo unseen; echo mine > /tmp/scratch"
        done = run_to_exit(executor, launch(1, ["sh", "-c", script]))
    finally:
        host_file.unlink()
    assert done.outcome is Outcome.SUCCEEDED
    assert "unseen" in executor.log_path(1).read_text()
    assert not executor.jobdir(at(1)).tmp.exists()  # emptied and removed with the attempt


def test_a_working_directory_that_links_to_the_facility_is_refused(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    """The user's directory is judged as opened: a link it holds to the facility's data is
    the facility's, whatever the path says."""
    secret = tmp_path / "facility"
    secret.mkdir(mode=0o700)
    mine = own_dir(executor, tmp_path / "mine")
    (mine / "code").symlink_to(secret)
    done = run_to_exit(executor, launch(1, ["true"], working_dir=str(mine / "code")))
    assert done.outcome is Outcome.FAILED
    assert done.reason is not None
    assert "does not belong to the project's identity aif-p1" in done.reason


def test_the_kernel_counts_its_cpu_time_and_peak_memory(executor: LocalExecutor) -> None:
    code = "x = bytearray(60 * 2**20); n = sum(range(3_000_000))"
    done = run_to_exit(executor, launch(1, python(code), memory_mb=500))
    assert done.outcome is Outcome.SUCCEEDED
    assert done.usage["cpu_time_s"] > 0
    assert 60 <= done.usage["peak_memory_mb"] < 500


def test_a_job_reads_the_directories_of_the_jobs_it_names_and_of_no_other(
    executor: LocalExecutor,
) -> None:
    """A fine-tune reads its pretraining's checkpoints (`inputs`), read-only; a job that
    did not name it does not see it."""
    made = "mkdir -p checkpoints; echo weights > checkpoints/step-300.pt"
    assert run_to_exit(executor, launch(1, ["sh", "-c", made])).outcome is Outcome.SUCCEEDED
    pretrained = executor.work(1) / "checkpoints" / "step-300.pt"
    script = (
        f"cat {pretrained}; (echo x >> {pretrained}) 2>/dev/null || echo read-only; "
        f"ls {executor.work(1).parent.parent} | wc -l"
    )
    done = run_to_exit(executor, replace(launch(2, ["sh", "-c", script]), inputs=(1,)))
    assert done.outcome is Outcome.SUCCEEDED
    assert executor.log_path(2).read_text().splitlines() == ["weights", "read-only", "2"]
    other = run_to_exit(executor, launch(3, ["sh", "-c", f"cat {pretrained}"]))
    assert other.outcome is Outcome.FAILED  # not named: not there


@pytest.mark.slow
def test_a_multi_process_run_trains_in_its_sandbox(
    make_executor: Callable[..., LocalExecutor],
) -> None:
    """torchrun's two ranks meet on the sandbox's own loopback (no network), share /dev/shm
    and write their checkpoint: what the recipe's multi-GPU runs need (gloo on a CPU here)."""
    executor = make_executor(cpus=2)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "tiny", "--steps", "20",
    ]  # fmt: skip
    job = launch(1, command, env={"OMP_NUM_THREADS": "1"}, gpu_ids=["0", "1"], cpu_ids=[0, 1],
                 memory_mb=4096, time_limit_s=300)  # fmt: skip
    done = run_to_exit(executor, job, timeout_s=240)
    assert done.outcome is Outcome.SUCCEEDED, executor.log_path(1).read_text()[-2000:]
    assert list((executor.work(1) / "checkpoints").glob("step-*.pt"))
