"""The Slurm executor against the real test cluster: an admitted attempt runs as a Slurm job on
exactly its placement and reports its outcome; starting twice (also from a fresh executor after
a crash) submits once; cancel and preemption (SIGTERM seen by the job, then the kill); foreign
jobs are reported as load and never touched."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from aifactory.domain.resources import Resources
from aifactory.executors.base import Attempt, Launch, NodeSlice, Observation, Outcome, Phase
from aifactory.executors.job_socket import Relayed
from aifactory.executors.local.enter import Shell
from aifactory.executors.slurm import relay
from aifactory.executors.slurm.commands import SlurmClient
from aifactory.executors.slurm.executor import SlurmExecutor, SlurmExecutorConfig
from aifactory.executors.slurm.script import job_name
from tests.executors.slurm.conftest import Jobs, OverTime
from tests.slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slow
_ids = iter(range(1000, 100_000))
T = TypeVar("T")


@pytest.fixture
def executor(
    slurm_client: SlurmClient,
    slurm_cluster: SlurmCluster,
    shared_tmp: Path,
    over_time_attempt: OverTime,
) -> Iterator[SlurmExecutor]:
    made = SlurmExecutor(
        SlurmExecutorConfig(
            jobs_dir=shared_tmp / "jobs",
            site="NL",
            node_sites={"n2": "DE-site"},
            grace_s=3,
            gpu_device_pattern=slurm_cluster.gpu_device_pattern,
        ),
        slurm_client,
    )
    made.inventory()
    yield made
    for record in (shared_tmp / "jobs").glob("*/attempt-*/slurm.json"):  # this test's jobs
        slurm_client.cancel(json.loads(record.read_text())["slurm_job_id"])


def launch(command: list[str], *, node: str = "n1", gpus: int = 0, limit_s: int = 120) -> Launch:
    return Launch(
        attempt=Attempt(next(_ids), 1),
        command=command,
        env={"GREETING": "hallo"},
        working_dir=None,
        time_limit_s=limit_s,
        placement={node: NodeSlice([str(i) for i in range(gpus)], [0, 1], 512)},
        project=None,
        project_id=1,
    )


def until(
    executor: SlurmExecutor, attempt: Attempt, *phases: Phase, timeout_s: float = 30
) -> Observation:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = executor.poll([attempt])[attempt]
        if seen.phase in phases:
            return seen
        assert time.monotonic() < deadline, f"{attempt}: {seen}"
        time.sleep(0.3)


def test_inventory_maps_nodes_gpus_and_sites(executor: SlurmExecutor) -> None:
    offers = {o.node.id: o for o in executor.inventory()}
    assert set(offers) == {"n1", "n2"}
    assert offers["n1"].node.capacity == Resources(4, 8, 16000)
    assert offers["n1"].node.gpu_model == "h100"
    assert offers["n1"].gpu_ids == ["0", "1", "2", "3"]
    assert (offers["n1"].node.site, offers["n2"].node.site) == ("NL", "DE-site")
    assert {o.node.block for o in offers.values()} == {"leaf0"}  # the cluster's one leaf switch


def test_an_attempt_runs_on_its_placement_and_succeeds(
    executor: SlurmExecutor, slurm_client: SlurmClient
) -> None:
    job = launch(["bash", "-c", 'echo "$GREETING $CUDA_VISIBLE_DEVICES $SLURMD_NODENAME"'], gpus=2)
    executor.start(job)
    executor.start(job)  # idempotent
    done = until(executor, job.attempt, Phase.EXITED)
    assert (done.outcome, done.exit_code) == (Outcome.SUCCEEDED, 0)
    assert executor.log_path(job.job_id).read_text() == "hallo 0,1 n1\n"
    assert len(slurm_client.queue(name=job_name(job.attempt, "0"))) == 1


def test_a_failing_attempt_reports_its_exit_code(executor: SlurmExecutor) -> None:
    job = launch(["bash", "-c", "exit 3"])
    executor.start(job)
    done = until(executor, job.attempt, Phase.EXITED)
    assert (done.outcome, done.exit_code) == (Outcome.FAILED, 3)


def test_a_restarted_executor_finds_the_job_instead_of_submitting_again(
    executor: SlurmExecutor, slurm_client: SlurmClient
) -> None:
    job = launch(["sleep", "30"])
    executor.start(job)
    until(executor, job.attempt, Phase.RUNNING, Phase.STARTING)
    # A crash after sbatch answered but before the id was written: only the name is left.
    (executor.attempt_dir(job.attempt) / "slurm.json").unlink()
    fresh = SlurmExecutor(executor.config, slurm_client)
    fresh.inventory()
    fresh.start(job)
    assert len(slurm_client.queue(name=job_name(job.attempt, "0"))) == 1
    assert fresh.poll([job.attempt])[job.attempt].phase in (Phase.RUNNING, Phase.STARTING)
    fresh.cancel(job.attempt)
    assert until(fresh, job.attempt, Phase.EXITED).outcome is Outcome.CANCELLED


def test_never_submitted_reads_as_not_started(executor: SlurmExecutor) -> None:
    job = launch(["true"])
    assert executor.poll([job.attempt])[job.attempt].phase is Phase.NOT_STARTED


def test_preemption_signals_the_job_which_checkpoints_then_it_is_killed(
    executor: SlurmExecutor,
) -> None:
    script = "trap 'echo saved > checkpointed' TERM; for i in $(seq 600); do sleep 0.1; done"
    job = launch(["bash", "-c", script])
    marker = executor.work(job.job_id) / "checkpointed"  # its own directory, its cwd
    executor.start(job)
    until(executor, job.attempt, Phase.RUNNING)
    time.sleep(0.5)  # the trap is set
    executor.preempt(job.attempt)
    done = until(executor, job.attempt, Phase.EXITED, timeout_s=40)
    assert done.outcome is Outcome.PREEMPTED
    assert marker.read_text() == "saved\n"


def test_foreign_jobs_are_load_and_left_alone(
    executor: SlurmExecutor, jobs: Jobs, slurm_client: SlurmClient
) -> None:
    foreign = jobs.submit("#!/bin/sh\nsleep 60\n", "--gres=gpu:3", "--nodelist=n2", "-c", "2")
    jobs.wait(foreign, {"RUNNING"})
    deadline = time.monotonic() + 5
    while executor.foreign_load().get("n2", Resources()).gpus != 3:
        assert time.monotonic() < deadline, executor.foreign_load()
        time.sleep(0.5)
    (still,) = slurm_client.queue([foreign])
    assert still.state == "RUNNING"  # never touched
    others = [  # as Slurm allocated them; the session's over-time job also runs on n2
        Resources(int(j.tres.get("gres/gpu", 0)), int(j.tres["cpu"]), int(j.tres["mem"]))
        for j in slurm_client.queue()
        if j.state == "RUNNING" and j.nodes == ("n2",) and not j.name.startswith("aif-")
    ]
    assert executor.foreign_load()["n2"] == sum(others, Resources())
    assert executor.foreign_load()["n2"].gpus == 3


def test_slurms_accounting_of_the_attempts_use_comes_with_its_end(executor: SlurmExecutor) -> None:
    busy = "end=$((SECONDS+5)); while [ $SECONDS -lt $end ]; do :; done"
    job = launch(["bash", "-c", busy])
    executor.start(job)
    done = until(executor, job.attempt, Phase.EXITED)
    assert done.outcome is Outcome.SUCCEEDED
    # jobacct_gather samples every 2 s (JobAcctGatherFrequency): CPU time of most of the loop
    assert 2.0 <= done.usage["cpu_time_s"] <= 7.0
    assert "energy_j" not in done.usage  # the test cluster gathers no energy


def test_a_job_runs_in_its_environment_by_path_and_an_image_is_refused(
    executor: SlurmExecutor, shared_tmp: Path
) -> None:
    """On the cluster an environment is mounted by its path (the software root is on the
    shared file system); images are run by the site's own container plugin, not here."""
    env_dir = shared_tmp / "software" / "envs" / f"k{next(_ids)}"
    # from an interpreter every node's users may run (this host's facility Python is under
    # /root, which a project's identity cannot reach: a cluster's would be on a shared path)
    python = "/usr/bin/python3"
    subprocess.run([python, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    (env_dir / "aifactory-env.json").write_text(json.dumps({"base_prefix": "/usr"}))
    for path in (env_dir, *env_dir.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o055)
    job = replace(
        launch(["python", "-c", "import os, sys; print(sys.prefix, os.environ['VIRTUAL_ENV'])"]),
        environment=str(env_dir),
    )
    executor.start(job)
    done = until(executor, job.attempt, Phase.EXITED, timeout_s=60)
    assert (done.outcome, done.exit_code) == (Outcome.SUCCEEDED, 0), log_of(executor, job)
    assert executor.log_path(job.job_id).read_text() == f"{env_dir} {env_dir}\n"

    image = replace(launch(["true"]), image=str(shared_tmp / "software" / "images" / "x"))
    executor.start(image)
    refused = until(executor, image.attempt, Phase.EXITED)
    assert refused.outcome is Outcome.FAILED
    assert "runs no container images" in refused.reason


def log_of(executor: SlurmExecutor, job: Launch) -> str:
    path = executor.log_path(job.job_id)
    return path.read_text() if path.exists() else "(no log)"


SERVER = """
import http.server, os, socketserver
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from job " + os.environ["AIFACTORY_JOB_ID"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def address_string(self):
        return "relay"
    def log_message(self, *args):
        pass
socketserver.UnixStreamServer(".server.sock", Answer).serve_forever()
"""


def test_a_served_socket_is_reached_through_its_relay_and_by_the_facility_alone(
    executor: SlurmExecutor,
) -> None:
    """A session's socket on its node: relayed to a port of the range behind mutual TLS with
    the attempt's own keys; without the facility's certificate the relay takes nothing."""
    job = replace(launch(["/usr/bin/python3", "-c", SERVER]), serves=".server.sock")
    executor.start(job)
    until(executor, job.attempt, Phase.RUNNING)
    server = wait_for(
        lambda: executor.served(job.job_id, 1, ".server.sock"),
        lambda: f"its relay: {log_of(executor, job)}",
    )
    assert isinstance(server, Relayed)
    low, high = executor.config.relay_ports
    assert low <= server.port <= high
    url = f"https://{server.host}:{server.port}/"

    def answer() -> str | None:
        try:
            return httpx.get(url, verify=server.context, timeout=5).text
        except httpx.TransportError:
            return None  # the server has not made its socket yet

    assert wait_for(answer, "the server through the relay") == f"hello from job {job.job_id}"
    keys = executor.attempt_dir(job.attempt)
    stranger = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    stranger.check_hostname = False
    stranger.load_verify_locations(cafile=str(keys / relay.SERVER_CERT))
    with pytest.raises(httpx.TransportError):  # no client certificate: refused
        httpx.get(url, verify=stranger, timeout=5)
    other = relay.self_signed("someone")
    (keys.parent / "other.pem").write_bytes(other.both)
    stranger.load_cert_chain(str(keys.parent / "other.pem"))
    with pytest.raises(httpx.TransportError):  # another certificate: refused
        httpx.get(url, verify=stranger, timeout=5)
    server_key, client_key = os.stat(keys / relay.SERVER_KEY), os.stat(keys / relay.CLIENT_KEY)
    assert (server_key.st_mode & 0o777, client_key.st_mode & 0o777) == (0o400, 0o400)
    assert (server_key.st_uid, client_key.st_uid) == (executor.identity(1).uid, 0)
    assert executor.served(job.job_id, 1, "another.sock") is None  # it relays its one socket


def test_a_socket_swapped_for_a_link_leads_the_relay_nowhere(
    executor: SlurmExecutor, shared_tmp: Path
) -> None:
    """The relay runs outside the job's sandbox, as its identity: a link in place of the
    socket, to a socket of the node the identity may open (here one that answers anyone),
    must not reach it: the relay sees the socket's directory alone."""
    outside = shared_tmp / "outside.sock"
    server = socketserver.ThreadingUnixStreamServer(str(outside), _Outside)
    outside.chmod(0o777)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        link = f"ln -s {outside} .server.sock && sleep 60"
        job = replace(launch(["sh", "-c", link]), serves=".server.sock")
        executor.start(job)
        until(executor, job.attempt, Phase.RUNNING)
        found = wait_for(lambda: executor.served(job.job_id, 1, ".server.sock"), "its relay")
        assert (executor.work(job.job_id) / ".server.sock").is_symlink()
        url = f"https://{found.host}:{found.port}/"
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                httpx.get(url, verify=found.context, timeout=5)
            time.sleep(0.5)
    finally:
        server.shutdown()
        server.server_close()


class _Outside(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"a socket of the node")

    def address_string(self) -> str:
        return "outside"


MISSING = "/nonexistent/aifactory-hostile.so"


def test_exec_runs_in_the_jobs_sandbox_on_its_node_and_in_no_other_job(
    executor: SlurmExecutor,
) -> None:
    """In the job's sandbox as its identity, with its environment: given to the command
    alone (the dynamic loader names a missing LD_PRELOAD once per program given it: srun,
    and python on the node before the sandbox, must not be). Its record pointed at another
    job's sandbox, of another project or its own, gets nowhere."""
    mine = replace(launch(["sleep", "60"]), env={"GREETING": "hallo", "LD_PRELOAD": MISSING})
    theirs = replace(launch(["sleep", "60"]), project_id=2)
    sibling = launch(["sleep", "60"])  # the same project's, so the same identity
    for job in (mine, theirs, sibling):
        executor.start(job)
    for job in (mine, theirs, sibling):
        until(executor, job.attempt, Phase.RUNNING)
        wait_for(lambda job=job: init_pid(executor, job), "its sandbox")
    said, code = read_all(
        executor.open_shell(mine.job_id, 1, ["true"], tty=False, rows=24, cols=80)
    )
    assert (code, said.count(MISSING)) == (0, 1), said  # true's own: nothing before it had it
    script = 'echo "$GREETING $AIFACTORY_JOB_ID"; id -u; pwd; ls /proc | grep -c "^[0-9]"'
    shell = executor.open_shell(mine.job_id, 1, ["sh", "-c", script], tty=False, rows=24, cols=80)
    said, code = read_all(shell)
    assert code == 0, said
    greeting, uid, cwd, processes = [line for line in said.splitlines() if MISSING not in line]
    assert greeting == f"hallo {mine.job_id}"
    assert int(uid) == executor.identity(1).uid
    assert cwd == str(executor.work(mine.job_id))
    assert int(processes) < 10  # its sandbox's PID namespace, not the node's

    sizes = ["sh", "-c", "test -t 0 && echo a terminal; stty size"]
    shell = executor.open_shell(mine.job_id, 1, sizes, tty=True, rows=30, cols=100)
    said, code = read_all(shell)
    assert (code, "a terminal" in said, "30 100" in said) == (0, True, True), said

    status = executor.attempt_dir(mine.attempt) / "job" / "status.json"
    for other in (theirs, sibling):
        status.write_text(json.dumps({"child-pid": init_pid(executor, other)}))
        shell = executor.open_shell(mine.job_id, 1, ["id", "-u"], tty=False, rows=24, cols=80)
        said, code = read_all(shell)
        assert code != 0, said
        assert "is not of this job" in said


def init_pid(executor: SlurmExecutor, job: Launch) -> int | None:
    path = executor.attempt_dir(job.attempt) / "job" / "status.json"
    try:
        return int(json.loads(path.read_text())["child-pid"])
    except (OSError, ValueError, KeyError):
        return None


def read_all(shell: Shell, timeout_s: float = 30) -> tuple[str, int]:
    out = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(shell.output, 65536)
            except OSError:  # a terminal's end
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace"), shell.proc.wait(timeout=10)
    finally:
        shell.close()


def wait_for(
    check: Callable[[], T | None], what: str | Callable[[], str], timeout_s: float = 30
) -> T:
    deadline = time.monotonic() + timeout_s
    while (found := check()) is None:
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what() if callable(what) else what}"
        )
        time.sleep(0.2)
    return found
