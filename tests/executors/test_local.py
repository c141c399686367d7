"""The local executor, end to end: every job here is a real subprocess under a real supervisor."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aifactory.executors.base import Outcome, Phase
from aifactory.executors.local.executor import LocalExecutor
from aifactory.executors.local.jobdir import JobDir, read_json, write_json
from tests.executors.conftest import gone, supervisors_under, wait_gone
from tests.executors.jobs import (
    MB,
    at,
    duration_s,
    launch,
    own_dir,
    pids_of,
    python,
    run_to_exit,
    seen,
    started_pid,
    wait_for_log,
    wait_for_pids,
    wait_phase,
)


def test_success_records_exit_code_and_captures_stdout_and_stderr(executor: LocalExecutor) -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    before = time.time()
    observation = run_to_exit(executor, launch(1, python(code)))

    assert observation.phase is Phase.EXITED
    assert observation.outcome is Outcome.SUCCEEDED
    assert observation.exit_code == 0
    assert observation.started_at is not None
    assert observation.ended_at is not None
    assert before <= observation.started_at <= observation.ended_at <= time.time()
    assert observation.usage["wall_s"] >= 0
    log = executor.log_path(1).read_text()
    assert "to stdout" in log
    assert "to stderr" in log
    assert executor.log_path(1) == executor.jobdir(at(1)).root / "output.log"


def test_nonzero_exit_is_failed_with_its_code(executor: LocalExecutor) -> None:
    observation = run_to_exit(executor, launch(1, ["sh", "-c", "exit 3"]))

    assert observation.outcome is Outcome.FAILED
    assert observation.exit_code == 3
    assert observation.reason == "exited with code 3"


def test_killed_by_a_signal_is_failed_naming_the_signal(executor: LocalExecutor) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"
    observation = run_to_exit(executor, launch(1, python(code)))

    assert observation.outcome is Outcome.FAILED
    assert observation.exit_code == 128 + signal.SIGUSR1  # as a shell (and Slurm) report it
    assert observation.reason == f"killed by signal SIGUSR1 (exit code {128 + signal.SIGUSR1})"


def test_command_not_found_fails_with_a_reason_in_the_observation_and_log(
    executor: LocalExecutor,
) -> None:
    observation = run_to_exit(executor, launch(1, ["aifactory-no-such-command", "--flag"]))

    assert observation.phase is Phase.EXITED
    assert observation.outcome is Outcome.FAILED
    assert observation.exit_code is None
    assert observation.reason == "command not found: aifactory-no-such-command"
    assert "aifactory-no-such-command" in executor.log_path(1).read_text()


def test_missing_working_dir_fails_with_a_clear_reason(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    missing = tmp_path / "does-not-exist"
    observation = run_to_exit(executor, launch(1, ["true"], working_dir=str(missing)))

    assert observation.outcome is Outcome.FAILED
    assert observation.exit_code is None
    assert observation.reason == f"working directory does not exist: {missing}"
    assert str(missing) in executor.log_path(1).read_text()


# --- the job's surroundings -----------------------------------------------------------------


def test_working_dir_is_honoured(executor: LocalExecutor, tmp_path: Path) -> None:
    workdir = own_dir(executor, tmp_path / "work")
    code = "import os; print(os.getcwd()); open('made-here', 'w').write('yes')"
    observation = run_to_exit(executor, launch(1, python(code), working_dir=str(workdir)))

    assert observation.outcome is Outcome.SUCCEEDED
    assert Path(executor.log_path(1).read_text().strip()) == workdir
    assert (workdir / "made-here").read_text() == "yes"  # read-write, the host's own directory


def test_a_working_dir_not_of_the_projects_identity_is_refused(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    """A job names a directory it has no business in (root's, another project's): refused."""
    theirs = own_dir(executor, tmp_path / "theirs", project_id=2)
    roots = tmp_path / "roots"
    roots.mkdir()
    for job_id, workdir in ((1, theirs), (2, roots)):
        observation = run_to_exit(executor, launch(job_id, ["true"], working_dir=str(workdir)))

        assert observation.outcome is Outcome.FAILED
        assert observation.exit_code is None
        assert observation.reason == (
            f"working directory {workdir} does not belong to the project's identity aif-p1 "
            f"(uid {executor.identity(1).uid}): chown it, or work in the job's directory"
        )


def test_default_working_dir_is_the_jobs_own_directory(executor: LocalExecutor) -> None:
    observation = run_to_exit(executor, launch(7, ["sh", "-c", "pwd; echo $HOME; id -un"]))

    assert observation.outcome is Outcome.SUCCEEDED
    cwd, home, user = executor.log_path(7).read_text().split()
    assert Path(cwd) == Path(home) == executor.work(7)  # the same for every attempt
    assert user == "aif-p1"
    assert executor.work(7).stat().st_uid == executor.identity(1).uid


def test_env_has_the_jobs_variables_and_its_devices_but_no_control_plane_secrets(
    executor: LocalExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_name = f"AIFACTORY_TEST_SECRET_{os.getpid()}"
    monkeypatch.setenv("AIFACTORY_TOKEN", "tok-should-not-leak")
    monkeypatch.setenv("AIFACTORY_DATABASE_URL", "postgresql://u:p@db/aifactory")
    monkeypatch.setenv(secret_name, "s3cret")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    job = launch(
        42,
        python(code),
        env={"MY_SETTING": "hello world", "CUDA_VISIBLE_DEVICES": "0,1,2,3"},
        gpu_ids=["1", "3"],
    )
    observation = run_to_exit(executor, job)

    assert observation.outcome is Outcome.SUCCEEDED
    env = json.loads(executor.log_path(42).read_text())
    assert env["MY_SETTING"] == "hello world"
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"  # the placement wins over the job's own env
    assert env["AIFACTORY_GPU_IDS"] == "1,3"
    assert env["AIFACTORY_JOB_ID"] == "42"
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == str(executor.work(42))  # its own, never the facility's
    assert (env["USER"], env["LOGNAME"], env["TMPDIR"]) == ("aif-p1", "aif-p1", "/tmp")
    for name in ("AIFACTORY_TOKEN", "AIFACTORY_DATABASE_URL", secret_name):
        assert name not in env
    assert "tok-should-not-leak" not in executor.log_path(42).read_text()


def test_not_even_the_supervisor_holds_control_plane_secrets(
    executor: LocalExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job can read its parent's environment (/proc/PPID/environ): keep it clean too. Its
    parent is the sandbox's init, which has bubblewrap's own small environment."""
    monkeypatch.setenv("AIFACTORY_TOKEN", "tok-should-not-leak")
    code = (
        "import os; print(os.getppid()); "
        "print(open(f'/proc/{os.getppid()}/environ', 'rb').read().decode())"
    )
    observation = run_to_exit(executor, launch(43, python(code)))
    assert observation.outcome is Outcome.SUCCEEDED
    parent, parent_env = executor.log_path(43).read_text().split("\n", 1)
    assert parent == "1"
    assert "PATH=" in parent_env
    assert "tok-should-not-leak" not in parent_env


def test_a_job_without_gpus_sees_no_cuda_devices(executor: LocalExecutor) -> None:
    code = "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    observation = run_to_exit(executor, launch(1, python(code), gpu_ids=[]))

    assert observation.outcome is Outcome.SUCCEEDED
    assert executor.log_path(1).read_text().strip() == "''"


@pytest.mark.parametrize("cpu_ids", [[0], [1], [3], [0, 1], [0, 1, 2, 3]])
def test_cpu_affinity_maps_cpu_slots_onto_the_real_cpus(
    executor: LocalExecutor, cpu_ids: list[int]
) -> None:
    real = sorted(os.sched_getaffinity(0))
    expected = {real[i % len(real)] for i in cpu_ids}
    code = "import os; print(sorted(os.sched_getaffinity(0)))"
    observation = run_to_exit(executor, launch(1, python(code), cpu_ids=cpu_ids))

    assert observation.outcome is Outcome.SUCCEEDED
    assert set(json.loads(executor.log_path(1).read_text())) == expected


# --- stopping a job: time limit, cancel, memory -----------------------------------------------


def test_time_limit_ends_a_job_as_timeout(executor: LocalExecutor) -> None:
    observation = run_to_exit(executor, launch(1, ["sleep", "30"], time_limit_s=1))

    assert observation.outcome is Outcome.TIMEOUT
    assert observation.exit_code == 128 + signal.SIGTERM
    assert observation.reason == "time limit of 1 s reached"
    assert 1.0 <= duration_s(observation) < 5.0
    assert "time limit of 1 s reached" in executor.log_path(1).read_text()
    assert gone(started_pid(executor, 1))


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(
    executor: LocalExecutor,
) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"  # inherits SIG_IGN, same process group
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(60)\n"
    )
    executor.start(launch(1, python(code), time_limit_s=1))
    wait_phase(executor, 1, (Phase.RUNNING,))
    wait_for_log(executor, 1, "ignoring SIGTERM")
    sleepers = pids_of(executor.identity(1).uid, "sleep")
    observation = wait_phase(executor, 1)

    assert observation.outcome is Outcome.TIMEOUT
    assert observation.exit_code == 128 + signal.SIGKILL
    assert duration_s(observation) >= 1.0 + 1.0  # the time limit, then grace_s
    assert sleepers
    assert wait_gone([started_pid(executor, 1), *sleepers]) == []


def test_cancel_stops_a_running_job(executor: LocalExecutor) -> None:
    executor.start(launch(1, ["sh", "-c", "echo up; exec sleep 30"]))
    wait_phase(executor, 1, (Phase.RUNNING,))
    wait_for_log(executor, 1, "up")

    executor.cancel(at(1))
    observation = wait_phase(executor, 1)

    assert observation.outcome is Outcome.CANCELLED
    assert observation.reason == "cancelled at the user's request"
    assert observation.exit_code == 128 + signal.SIGTERM
    assert gone(started_pid(executor, 1))


def test_cancel_before_start_means_it_never_runs(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    executor.cancel(at(1))
    assert seen(executor, 1).phase is Phase.NOT_STARTED

    observation = run_to_exit(executor, launch(1, ["touch", str(marker)]))

    assert observation.outcome is Outcome.CANCELLED
    assert observation.exit_code is None
    assert observation.reason == "cancelled before it started"
    assert not executor.jobdir(at(1)).started.exists()
    assert not marker.exists()


def test_cancel_after_exit_changes_nothing(executor: LocalExecutor) -> None:
    first = run_to_exit(executor, launch(1, ["true"]))
    executor.cancel(at(1))

    assert seen(executor, 1) == first
    assert first.outcome is Outcome.SUCCEEDED


def test_the_kernel_stops_a_job_over_its_memory(executor: LocalExecutor) -> None:
    code = (
        "import time\n"
        f"hog = bytearray({200 * MB})\n"  # zero-filled: every page is resident
        "print('allocated', flush=True)\n"
        "time.sleep(30)\n"
    )
    observation = run_to_exit(executor, launch(1, python(code), memory_mb=50))

    assert observation.outcome is Outcome.FAILED
    assert observation.reason is not None
    assert observation.reason == "out of memory: the kernel stopped it at its limit of 50 MB"
    assert observation.usage["peak_memory_mb"] <= 50
    assert duration_s(observation) < 10
    assert gone(started_pid(executor, 1))


def test_the_memory_limit_counts_the_jobs_children(executor: LocalExecutor) -> None:
    hog = f"import time; hog = bytearray({200 * MB}); time.sleep(30)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}])"
    observation = run_to_exit(executor, launch(1, python(code), memory_mb=100))

    assert observation.outcome is Outcome.FAILED
    assert observation.reason is not None
    assert observation.reason.startswith("out of memory"), observation.reason


def test_a_job_within_its_memory_succeeds(executor: LocalExecutor) -> None:
    code = f"import time; data = bytearray({20 * MB}); time.sleep(0.8)"
    observation = run_to_exit(executor, launch(1, python(code), memory_mb=500))

    assert observation.outcome is Outcome.SUCCEEDED


# --- at most once, and surviving a control-plane restart --------------------------------------


def test_start_is_idempotent_across_calls_and_executor_instances(
    make_executor: Callable[..., LocalExecutor], jobs_dir: Path, tmp_path: Path
) -> None:
    first = make_executor()
    marker = own_dir(first, tmp_path / "shared") / "runs"
    job = launch(
        1, ["sh", "-c", f"echo run >> {marker}; sleep 0.3"], working_dir=str(marker.parent)
    )
    first.start(job)
    first.start(job)
    second = make_executor()  # a restarted control plane, racing the first supervisor
    second.start(job)

    observation = wait_phase(first, 1)
    assert observation.outcome is Outcome.SUCCEEDED
    assert wait_phase(second, 1) == observation
    first.start(job)  # and again, long after it ended
    second.start(job)
    make_executor().start(job)

    assert wait_gone(supervisors_under(jobs_dir)) == []
    assert marker.read_text().splitlines() == ["run"]
    assert seen(first, 1) == observation


def test_concurrent_starts_from_many_executors_run_the_job_once(
    make_executor: Callable[..., LocalExecutor], jobs_dir: Path, tmp_path: Path
) -> None:
    executors = [make_executor() for _ in range(4)]
    marker = own_dir(executors[0], tmp_path / "shared") / "runs"
    job = launch(1, ["sh", "-c", f"echo run >> {marker}"], working_dir=str(marker.parent))
    for executor in executors:
        executor.start(job)

    observation = wait_phase(executors[0], 1)
    assert observation.outcome is Outcome.SUCCEEDED
    assert wait_gone(supervisors_under(jobs_dir)) == []
    assert marker.read_text().splitlines() == ["run"]
    assert all(seen(e, 1) == observation for e in executors)


def test_a_restarted_executor_sees_running_and_exited_jobs(
    make_executor: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    first = make_executor()
    go = own_dir(first, tmp_path / "shared") / "go"
    waiting = f"while [ ! -e {go} ]; do sleep 0.05; done; echo done"
    first.start(launch(1, ["sh", "-c", waiting], working_dir=str(go.parent)))
    wait_phase(first, 1, (Phase.RUNNING,))

    restarted = make_executor()
    running = seen(restarted, 1)
    assert running.phase is Phase.RUNNING
    assert running.started_at is not None

    go.touch()
    observation = wait_phase(restarted, 1)
    assert observation.outcome is Outcome.SUCCEEDED
    assert observation.started_at == running.started_at
    assert restarted.log_path(1).read_text().strip() == "done"


def test_a_job_nobody_started_is_not_started(executor: LocalExecutor, jobs_dir: Path) -> None:
    observations = executor.poll([at(404), at(405)])

    assert {o.phase for o in observations.values()} == {Phase.NOT_STARTED}
    assert not (jobs_dir / "404").exists()  # polling only observes


def test_a_dead_supervisor_takes_its_job_with_it_and_the_job_is_lost(
    make_executor: Callable[..., LocalExecutor],
) -> None:
    first = make_executor()
    first.start(launch(1, ["sh", "-c", "setsid sleep 31 & sleep 30"]))
    wait_phase(first, 1, (Phase.RUNNING,))
    attempt = read_json(first.jobdir(at(1)).attempt)
    assert attempt is not None
    supervisor_pid = int(attempt["supervisor_pid"])
    sleepers = wait_for_pids(first.identity(1).uid, "sleep", 2)

    os.kill(supervisor_pid, signal.SIGKILL)  # the supervisor dies: nothing of its job goes on
    assert wait_gone([supervisor_pid, started_pid(first, 1), *sleepers]) == []
    restarted = make_executor()
    observation = seen(restarted, 1)
    assert observation.phase is Phase.LOST
    assert observation.reason == "the job's supervisor disappeared"
    restarted.start(launch(1, ["sleep", "30"]))  # a lost job is never started again
    assert read_json(restarted.jobdir(at(1)).started) == read_json(first.jobdir(at(1)).started)
    assert seen(restarted, 1).phase is Phase.LOST


def test_a_supervisor_that_died_while_starting_leaves_the_job_lost(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    jobdir = JobDir(executor.jobdir(at(1)).root)
    jobdir.root.mkdir(parents=True)
    write_json(jobdir.attempt, {"supervisor_pid": 0, "at": time.time()})  # as a crash leaves it

    assert seen(executor, 1).phase is Phase.LOST
    executor.start(launch(1, ["touch", str(marker)]))
    time.sleep(0.3)

    observation = seen(executor, 1)
    assert observation.phase is Phase.LOST
    assert observation.reason == "the supervisor died while starting the job"
    assert not marker.exists()


# --- inventory --------------------------------------------------------------------------------


def test_inventory_offers_virtual_gpus(make_executor: Callable[..., LocalExecutor]) -> None:
    (offer,) = make_executor(node_id="node-a", site="DE").inventory()

    assert offer.gpu_ids == ["0", "1", "2", "3"]
    assert offer.node.id == "node-a"
    assert offer.node.site == "DE"
    assert offer.node.gpu_model == "virtual"
    assert offer.node.capacity.gpus == 4
    assert offer.node.capacity.cpus == 4
    assert offer.node.capacity.memory_mb > 0


def test_inventory_without_gpus(make_executor: Callable[..., LocalExecutor]) -> None:
    (offer,) = make_executor(virtual_gpus=0, memory_mb=2048).inventory()

    assert offer.gpu_ids == []
    assert offer.node.gpu_model is None
    assert offer.node.capacity.gpus == 0
    assert offer.node.capacity.cpus == 4
    assert offer.node.capacity.memory_mb == 2048
