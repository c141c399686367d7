"""A facility on the real test Slurm cluster (`aifactory up --executor slurm`): its nodes and
GPUs come from Slurm; jobs run as Slurm jobs and end with their outcomes and logs; a foreign
`sbatch` job's GPUs are not handed out; a SIGKILL of the control plane while a job runs, and a
restart, reconcile it without running it twice; an interactive session is a Slurm job whose
JupyterLab the facility reaches through its node's relay, and exec runs in a job's sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifactory.client import ApiError, Client
from aifactory.executors.slurm.commands import SlurmClient, SlurmConfig
from aifactory.executors.slurm.parse import SlurmJob
from tests.e2e.process import FacilityProcess
from tests.e2e.test_sessions_facility import World, enter, run_code
from tests.slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> SlurmClient:
    return SlurmClient(SlurmConfig(conf=str(slurm_cluster.conf)))


@pytest.fixture(scope="session")
def node_python(shared_base: Path) -> Path:
    """A Python with JupyterLab that the projects' identities can run on the nodes: the
    nodes' own python3 in a virtual environment that reads this test run's packages (a
    cluster's would be installed on the shared file system; this host's facility Python is
    under /root, which an identity cannot reach). The same CPython minor version: its
    compiled packages load."""
    venv = shared_base / "node-python"
    if not venv.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
        (site,) = venv.glob("lib/python3*/site-packages")
        (site / "facility-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        (venv / "share").symlink_to(Path(sys.prefix) / "share")  # JupyterLab's assets
        for path in (venv, *venv.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055)
    return venv


@pytest.fixture
def facility(
    shared_tmp: Path, slurm_cluster: SlurmCluster, slurm: SlurmClient, node_python: Path
) -> Iterator[FacilityProcess]:
    """A facility whose data directory lies where the nodes reach it (jobs' directories and
    datasets, as the projects' identities)."""
    data = shared_tmp / "data"
    process = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=None)
    process.args += ["--executor", "slurm", "--slurm-conf", str(slurm_cluster.conf)]
    process.env["AIFACTORY_GPU_DEVICE_PATTERN"] = slurm_cluster.gpu_device_pattern
    process.env["AIFACTORY_SESSION_PYTHON"] = str(node_python / "bin" / "python")
    process.env["AIFACTORY_SANDBOX_SOFTWARE"] = f"{node_python}:{sys.prefix}"
    data.mkdir()
    process.start()
    yield process
    process.stop()
    for record in (data / "jobs").glob("*/attempt-*/slurm.json"):  # this facility's jobs only
        slurm.cancel(json.loads(record.read_text())["slurm_job_id"])


def until(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {check()}")


def state_of(api: Client, job_id: int, *states: str) -> dict[str, Any]:
    def seen() -> Any:
        job = api.job(job_id)
        return job if job["state"] in states else False

    try:
        return until(seen, f"job {job_id} {states}")
    except AssertionError:
        job = api.job(job_id)
        raise AssertionError(f"job {job_id} is {job['state']}: {job['state_reason']}") from None


def slurm_job_of(facility: FacilityProcess, slurm: SlurmClient, job_id: int) -> SlurmJob:
    record = facility.data_dir / "jobs" / str(job_id) / "attempt-1" / "slurm.json"
    (found,) = slurm.queue([json.loads(record.read_text())["slurm_job_id"]])
    return found


def test_jobs_run_on_slurm_with_their_outcomes(
    facility: FacilityProcess, slurm: SlurmClient
) -> None:
    with facility.client() as api:
        nodes = {n["id"]: n for n in api.facility()["nodes"]}
        assert set(nodes) == {"n1", "n2"}
        assert {(n["gpus"], n["gpu_model"], n["cpus"]) for n in nodes.values()} == {(4, "h100", 8)}
        assert {n["block"] for n in nodes.values()} == {"leaf0"}  # Slurm's topology: one leaf
        spec = {"gpus": 2, "time_limit_s": 300, "memory_mb": 512}
        ok = api.submit(["bash", "-c", 'echo "gpus $CUDA_VISIBLE_DEVICES"; echo hallo'], **spec)
        bad = api.submit(["bash", "-c", "exit 4"], **spec)
        done = state_of(api, ok["id"], "SUCCEEDED", "FAILED")
        assert done["state"] == "SUCCEEDED", done
        text = api.logs(ok["id"])["text"]
        assert "hallo" in text
        assert "gpus 0,1" in text or "gpus 2,3" in text
        failed = state_of(api, bad["id"], "SUCCEEDED", "FAILED")
        assert (failed["state"], failed["exit_code"]) == ("FAILED", 4)
        with pytest.raises(ApiError) as refused:  # its engine's socket: out of the gateway's reach
            api.create_endpoint("served", project="default", source_job=ok["id"])
        assert refused.value.status == 409
        assert "endpoints need the local executor" in str(refused.value)
    ran = slurm_job_of(facility, slurm, ok["id"])
    assert ran.account == "default"  # the project's Slurm account, made for it
    assert ran.tres["gres/gpu"] == 2


def test_a_foreign_job_keeps_its_gpus(
    facility: FacilityProcess, slurm: SlurmClient, tmp_path: Path
) -> None:
    foreign = slurm.submit(
        "#!/bin/sh\nsleep 120\n", ["--gres=gpu:4", "--nodelist=n2", f"--output={tmp_path}/f.out"]
    )
    until(lambda: slurm.queue([foreign])[0].state == "RUNNING", "the foreign job to run")
    with facility.client() as api:
        spec = {"gpus": 4, "time_limit_s": 300, "memory_mb": 512}
        first = api.submit(["sleep", "20"], **spec)
        second = api.submit(["sleep", "20"], **spec)
        running = state_of(api, first["id"], "RUNNING")
        assert list(running["placement"]) == ["n1"]
        time.sleep(3)  # ticks go by: n2's GPUs are the foreign job's
        assert api.job(second["id"])["state"] == "PENDING"
        (still,) = slurm.queue([foreign])
        assert still.state == "RUNNING"  # never touched
        slurm.cancel(foreign)
        assert list(state_of(api, second["id"], "RUNNING")["placement"]) == ["n2"]


def test_a_killed_control_plane_reconciles_without_running_twice(
    facility: FacilityProcess, slurm: SlurmClient
) -> None:
    with facility.client() as api:
        job = api.submit(
            ["bash", "-c", "echo run >> runs.txt; sleep 6"], time_limit_s=300, memory_mb=512
        )
        state_of(api, job["id"], "RUNNING")
    runs = facility.data_dir / "jobs" / str(job["id"]) / "work" / "runs.txt"  # its own dir
    facility.kill()
    time.sleep(8)  # the job ends while nobody watches
    facility.start()
    with facility.client() as api:
        done = state_of(api, job["id"], "SUCCEEDED", "FAILED")
    assert done["state"] == "SUCCEEDED", done
    assert runs.read_text() == "run\n"
    submitted = slurm_job_of(facility, slurm, job["id"])
    assert [j.id for j in slurm.queue(name=submitted.name)] == [submitted.id]  # one Slurm job


def test_gpu_counts_are_honoured(facility: FacilityProcess, slurm: SlurmClient) -> None:
    with facility.client() as api:
        spec = {"gpus": 2, "time_limit_s": 300, "memory_mb": 512}
        jobs = [api.submit(["sleep", "12"], **spec) for _ in range(5)]
        running = [state_of(api, j["id"], "RUNNING") for j in jobs[:4]]
        assert sorted(next(iter(j["placement"])) for j in running) == ["n1", "n1", "n2", "n2"]
        for job in running:  # two 2-GPU jobs share each 4-GPU node, on GPUs of their own
            ran = slurm_job_of(facility, slurm, job["id"])
            assert ran.tres["gres/gpu"] == 2
        assert api.job(jobs[4]["id"])["state"] == "PENDING"  # no room: it waits its turn
        assert state_of(api, jobs[4]["id"], "SUCCEEDED")["state"] == "SUCCEEDED"


@pytest.mark.timeout(300)
def test_a_session_on_slurm_is_reached_through_its_nodes_relay(
    facility: FacilityProcess, slurm: SlurmClient
) -> None:
    """The session is a Slurm job; its JupyterLab answers through the proxy (the relay on its
    node, mutual TLS), a kernel runs code in the job's sandbox on its GPU, the culler asks it
    what it did, exec runs in it as the job does, and stopping it ends the Slurm job."""
    with facility.client() as admin:
        admin.create_organisation("labs", "university")
        token = admin.create_user("ann")["token"]
        admin.create_project("nlp", "labs", owner="ann")
        now = datetime.now(UTC)
        admin.create_allocation(
            project="nlp", programme="research", gpu_hours=100,
            valid_from=now - timedelta(days=1), valid_to=now + timedelta(days=30), reason="test",
        )  # fmt: skip
    with Client(facility.url, token) as ann:
        world = World(facility, ann, ann, ann, {"ann": token})
        started = ann.start_session(project="nlp", gpus=1, memory_mb=2048, idle_timeout_s=3600)
        sid = started["id"]
        try:
            ready = ann.wait_session_ready(sid, timeout_s=90)  # the culler reached it
        except TimeoutError as late:
            attempt = facility.data_dir / "jobs" / str(sid) / "attempt-1"
            files = {p.name: p.read_text()[:200] for p in attempt.rglob("*.json")}
            log = ann.logs(sid)["text"]
            raise AssertionError(f"{ann.session(sid)}\n{files}\n{log}") from late
        assert ready["ready"], ann.logs(sid)["text"]
        relayed = facility.data_dir / "jobs" / str(sid) / "attempt-1" / "job" / "relay.json"
        assert json.loads(relayed.read_text())["port"] >= 42000
        client, landing = enter(world, ann.open_session(sid))
        lab = client.get(landing)
        assert lab.status_code == 200
        assert "JupyterLab" in lab.text
        kernel = client.post(f"/sessions/{sid}/api/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        code = "import os\nprint(os.environ['CUDA_VISIBLE_DEVICES'], os.environ['SLURM_JOB_ID'])"
        printed = run_code(
            world, client.headers["Host"], client.headers["Cookie"], f"/sessions/{sid}/",
            kernel.json()["id"], code,
        )  # fmt: skip
        gpus, slurm_id = printed.split()
        assert gpus in ("0", "1", "2", "3")
        assert int(slurm_id) == slurm_job_of(facility, slurm, sid).id
        client.close()
        env = {**facility.env, "AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": token}
        done = subprocess.run(
            [sys.executable, "-m", "aifactory", "exec", str(sid), "--", "sh", "-c",
             "id -u; tr -d '\\0' < /proc/1/cmdline; echo; exit 3"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 3, done.stderr
        # srun says so when a command fails (docs/sessions.md); the rest is the command's
        said = [line for line in done.stdout.splitlines() if not line.startswith("srun: ")]
        uid, init = said[:2]
        assert uid != "0"
        assert init.startswith("/usr/bin/bwrap"), done.stdout  # its sandbox's PID namespace
        ann.stop_session(sid)
        stopped = state_of(ann, sid, "CANCELLED", "FAILED", "SUCCEEDED")
        assert stopped["state"] == "CANCELLED"
