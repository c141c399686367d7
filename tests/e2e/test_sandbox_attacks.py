"""Hostile tenants against a real facility (`aifactory up`), on the local executor and on the
test Slurm cluster (DESIGN §8, docs/sandbox.md).

Two projects share the facility. Beta has a private dataset, a finished job whose log and
checkpoint hold its secrets, and (on the local executor) a job still running. Alpha's member
then submits jobs that try what a malicious tenant would: read the facility's database, its
admin password and token, beta's log, checkpoint and data; write into a dataset it was
granted; see or kill other processes; outlive its job; take more memory or processes than it
was given; open GPUs it was not given; reach the facility or the internet; forge its records;
name the facility's or beta's directories as its working directory. Every attempt is refused,
beta's work and the facility carry on, and the same facility still runs honest work (the first
test: a job reads its granted dataset and writes its own directory).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow

BETA_LOG_SECRET = "beta-log-secret-7f3a"
BETA_CKPT_SECRET = "beta-checkpoint-secret-91c2"
BETA_DATA_SECRET = "beta-private-record-55e0"
CORPUS = "Het is een mooie dag in Utrecht.\n"
PIDS_MAX = 128
UID_BASE = 3_000_000


@dataclass
class World:
    executor: str
    facility: FacilityProcess
    admin: Client
    alpha: Client  # ann, a member of alpha
    alpha_id: int
    beta_job: int  # finished: its log and checkpoint hold beta's secrets
    beta_running: int | None  # still running while alpha attacks (local executor)
    corpus: Path  # the dataset alpha was granted, on the host
    beta_data: Path  # beta's private dataset, on the host

    def run(self, script: str, **spec: Any) -> dict[str, Any]:
        """Alpha's job, waited for; with its log as `log`."""
        spec.setdefault("time_limit_s", 120)
        spec.setdefault("memory_mb", 256)
        job = self.alpha.submit(script=script, project="alpha", **spec)
        done = self.alpha.wait(job["id"], timeout_s=180, poll_s=0.2)
        done["log"] = self.alpha.logs(job["id"])["text"]
        return done

    def healthy(self) -> None:
        assert httpx.get(f"{self.facility.url}/api/v1/health", timeout=5).status_code == 200
        if self.beta_running is not None:
            assert self.admin.job(self.beta_running)["state"] == "RUNNING"


@pytest.fixture(scope="module", params=["local", "slurm"])
def world(
    request: pytest.FixtureRequest, shared_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    executor = request.param
    root = shared_base / f"attacks-{executor}"
    root.mkdir(mode=0o711)
    data = root / "data"
    gpus = 4 if executor == "local" else None  # Slurm's nodes declare their own
    process = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=gpus)
    process.env["AIFACTORY_SANDBOX_PIDS_MAX"] = str(PIDS_MAX)
    if executor == "slurm":
        cluster = request.getfixturevalue("slurm_cluster")
        process.args += ["--executor", "slurm", "--slurm-conf", str(cluster.conf)]
        process.env["AIFACTORY_GPU_DEVICE_PATTERN"] = cluster.gpu_device_pattern
    else:
        process.env["AIFACTORY_VIRTUAL_GPU_DEVICES"] = str(_gpu_files(root / "dev"))
    data.mkdir()
    process.start()
    try:
        with process.client() as admin:
            made = _populate(executor, process, admin)
            with made.alpha:
                yield made
    finally:
        process.stop()
        process.kill_leftover_jobs()


def _gpu_files(directory: Path) -> Path:
    """The test seam's stand-ins for four GPUs' device nodes (virtual GPU i: nvidia<i>)."""
    directory.mkdir(mode=0o755)
    for index in range(4):
        (directory / f"nvidia{index}").write_text(f"gpu {index}\n")
    return directory


def _populate(executor: str, facility: FacilityProcess, admin: Client) -> World:
    admin.create_organisation("labs", "university")
    alpha_id = admin.create_project("alpha", "labs")["id"]
    admin.create_project("beta", "labs")
    tokens = {}
    now = datetime.now(UTC)
    for user, project in (("ann", "alpha"), ("bob", "beta")):
        tokens[user] = admin.create_user(user)["token"]
        admin.add_member(project, user)
        admin.create_allocation(
            project=project,
            programme="research",
            gpu_hours=10,
            valid_from=now - timedelta(hours=1),
            valid_to=now + timedelta(days=1),
            reason="GPU-hours for the test's jobs",
        )
    corpus, beta_data = _datasets(facility, admin)
    with Client(facility.url, tokens["bob"]) as bob:
        beta_job, running = _beta_work(executor, bob)
    return World(
        executor,
        facility,
        admin,
        Client(facility.url, tokens["ann"]),
        alpha_id,
        beta_job["id"],
        running,
        corpus,
        beta_data,
    )


def _beta_work(executor: str, bob: Client) -> tuple[dict[str, Any], int | None]:
    """A finished job with beta's secrets in its log and checkpoint; on the local executor,
    one still running that alpha's attacks must leave alone."""
    checkpoint = f'echo {BETA_CKPT_SECRET} > "$AIFACTORY_CHECKPOINT_DIR/model.pt"'
    beta_job = bob.submit(
        script=f"echo {BETA_LOG_SECRET}; {checkpoint}", project="beta", memory_mb=256
    )
    assert bob.wait(beta_job["id"], timeout_s=120)["state"] == "SUCCEEDED"
    if executor != "local":
        return beta_job, None
    running = bob.submit(["sleep", "600"], project="beta", memory_mb=64)["id"]
    deadline = time.monotonic() + 30
    while bob.job(running)["state"] != "RUNNING":
        assert time.monotonic() < deadline, bob.job(running)
        time.sleep(0.2)
    return beta_job, running


def _datasets(facility: FacilityProcess, admin: Client) -> tuple[Path, Path]:
    """A facility corpus granted to alpha, and beta's own private dataset (no grant)."""
    root = facility.data_dir / "datasets"
    corpus = root / "corpus" / "v1"
    beta_data = root / "beta" / "beta-private" / "v1"
    for path, text in ((corpus, CORPUS), (beta_data, BETA_DATA_SECRET + "\n")):
        path.mkdir(parents=True)  # 0755 (this process's umask): Slurm's nodes walk through
        (path / "data.txt").write_text(text)
    until = datetime.now(UTC) + timedelta(days=30)
    terms = {
        "residency": "NL",
        "retention_until": until,
        "licence": "CC0-1.0",
        "controller": "AI Factory NL",
        "processor": "AI Factory NL",
        "purposes": ["research"],
    }
    admin.register_dataset("corpus", path="corpus/v1", classification="public", **terms)
    admin.grant_dataset("corpus", project="alpha", purpose="research", until=until)
    admin.register_dataset(
        "beta-private", path="beta-private/v1", classification="internal",
        project="beta", **terms,
    )  # fmt: skip
    return corpus, beta_data


def _facility_secrets(world: World) -> list[str]:
    facility = world.facility
    assert facility.token is not None
    assert facility.password is not None
    return [facility.token, facility.password, BETA_LOG_SECRET, BETA_CKPT_SECRET, BETA_DATA_SECRET]


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        digest.update(str(file.relative_to(path)).encode())
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _leftovers(uid: int, marker: str) -> list[str]:
    """Processes of `uid` whose command line has `marker` (the identity is the project's on
    every facility of this host, so other facilities' jobs may run under it too)."""
    found = []
    for proc in psutil.process_iter(["uids", "cmdline"]):
        uids, cmdline = proc.info["uids"], " ".join(proc.info["cmdline"] or [])
        if uids is not None and uids.real == uid and marker in cmdline:
            found.append(cmdline)
    return found


def _wait_no_leftovers(uid: int, marker: str, timeout_s: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := _leftovers(uid, marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


# ---- honest work first ---------------------------------------------------------------------


def test_honest_work_runs_under_its_own_identity_with_its_data(world: World) -> None:
    done = world.run(
        'id -u; echo "$HOME"; cat "$AIFACTORY_DATASET_CORPUS/data.txt"; echo kept > mine.txt',
        datasets=["corpus"],
    )
    assert done["state"] == "SUCCEEDED", done
    uid, home, text = done["log"].splitlines()[:3]
    assert int(uid) == UID_BASE + world.alpha_id  # never the facility's (root)
    work = world.facility.data_dir / "jobs" / str(done["id"]) / "work"
    assert Path(home) == work
    assert text + "\n" == CORPUS
    assert (work / "mine.txt").read_text() == "kept\n"
    assert work.stat().st_uid == UID_BASE + world.alpha_id


# ---- the facility's secrets and other tenants' work ----------------------------------------


def test_the_facility_and_the_other_project_cannot_be_read(world: World) -> None:
    data = world.facility.data_dir
    beta = data / "jobs" / str(world.beta_job)
    targets = [
        data / "aifactory.db",
        data / "initial-admin-password",
        data / "cli.json",  # the admin's CLI token
        Path("/root/.config/aifactory/config.json"),
        beta / "attempt-1" / "output.log",
        beta / "attempt-1" / "job" / "output.log",
        beta / "attempt-1" / "launch.json",
        beta / "attempt-1" / "sandbox.args",
        beta / "work" / "checkpoints" / "model.pt",
        world.beta_data / "data.txt",
    ]
    script = "\n".join(
        [
            *(
                f'cat "{t}" >/dev/null 2>&1 && echo "READ {t}" || echo "DENIED {t}"'
                for t in targets
            ),
            f'ls -a "{data}" "{data}/jobs" "{data}/datasets" /root 2>&1 | head -20',
            f'grep -rs {BETA_LOG_SECRET} /tmp /root "$HOME" "{data}" 2>/dev/null | head -3',
            f'grep -rs {BETA_CKPT_SECRET} /tmp /root "$HOME" "{data}" 2>/dev/null | head -3',
            f"python3 -c \"import sqlite3; sqlite3.connect('file:{data}/aifactory.db?mode=ro',"
            " uri=True).execute('pragma user_version')\" 2>&1 | tail -1",
        ]
    )
    done = world.run(script)
    log = done["log"]
    assert "READ " not in log, log
    assert log.count("DENIED ") == len(targets)
    for secret in _facility_secrets(world):
        assert secret not in log
    assert "unable to open database file" in log
    world.healthy()


def test_another_projects_dataset_cannot_be_named_either(world: World) -> None:
    with pytest.raises(ApiError) as refused:
        world.alpha.submit(["true"], project="alpha", datasets=["beta-private"])
    with pytest.raises(ApiError) as missing:
        world.alpha.submit(["true"], project="alpha", datasets=["no-such-data"])
    assert refused.value.status == missing.value.status == 422
    assert refused.value.errors[0]["field"] == "datasets"
    assert refused.value.message == missing.value.message.replace("no-such-data", "beta-private")


def test_a_granted_dataset_is_read_only_even_for_its_reader(world: World) -> None:
    before = _tree_hash(world.corpus)
    script = (
        'd="$AIFACTORY_DATASET_CORPUS"\n'
        'echo evil > "$d/evil.txt" 2>&1 || echo "no new file"\n'
        'echo evil >> "$d/data.txt" 2>&1 || echo "no append"\n'
        'rm -f "$d/data.txt" 2>&1 || echo "no removal"\n'
        'chmod u+w "$d/data.txt" 2>&1 || echo "no chmod"\n'
        'cat "$d/data.txt"\n'
    )
    done = world.run(script, datasets=["corpus"])
    log = done["log"]
    for refusal in ("no new file", "no append", "no removal", "no chmod"):
        assert refusal in log, log
    assert "Read-only file system" in log
    assert CORPUS in log  # it can read it
    assert _tree_hash(world.corpus) == before


def test_no_descriptor_of_the_facility_leads_out(world: World) -> None:
    """What the job inherits is its standard input, output and error: no descriptor of the
    facility's (an open directory would let `..` walk out of the sandbox to the host)."""
    done = world.run("ls /proc/self/fd; ls /proc/self/fd/3/.. 2>&1 | head -3")
    fds = [line for line in done["log"].splitlines() if line.strip().isdigit()]
    assert fds[:3] == ["0", "1", "2"]
    assert len(fds) <= 4, done["log"]  # ls's own open directory at most
    assert "aifactory" not in done["log"]


def test_exporting_its_project_copies_nothing_it_points_at(world: World) -> None:
    """Links and pipes in its own directory, named like logs, as an owner's or admin's export
    (GDPR Art. 15) walks the project's jobs: nothing is followed, nothing hangs."""
    data = world.facility.data_dir
    script = (
        f'ln -s "{data}/initial-admin-password" secret.log\n'
        f'ln -s "{data}/aifactory.db" db.log\n'
        "mkfifo pipe.log\n"
        "echo honest\n"
    )
    done = world.run(script)
    assert done["state"] == "SUCCEEDED", done
    started = time.monotonic()
    archive = zipfile.ZipFile(io.BytesIO(world.admin.export_project("alpha")))
    assert time.monotonic() - started < 30
    names = archive.namelist()
    assert f"logs/{done['id']}/attempt-1.log" in names
    assert not [n for n in names if "secret" in n or "pipe" in n or n.endswith("db.log")]
    everything = b"".join(archive.read(n) for n in names)
    assert world.facility.password is not None
    assert world.facility.password.encode() not in everything
    assert b"SQLite format" not in everything
    world.healthy()


# ---- processes ------------------------------------------------------------------------------


def test_other_processes_cannot_be_seen_or_signalled(world: World) -> None:
    facility_pid = world.facility.proc.pid if world.facility.proc else 1
    script = (
        "ps -eo pid,user,args | grep -v 'ps -eo' | tail -n +2\n"
        f"kill -9 {facility_pid} 2>&1 || echo 'no kill facility'\n"
        "kill -9 -1 2>&1 || true\n"
        "echo still-here\n"
    )
    done = world.run(script)
    log = done["log"]
    shown = [line for line in log.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert shown, log
    assert all("aifactory up" not in line and "sleep 600" not in line for line in shown)
    assert all(int(line.split()[0]) < 20 for line in shown)  # its own PID namespace
    world.healthy()  # the facility, and beta's running job, never felt it


def test_nothing_outlives_its_job(world: World) -> None:
    uid = UID_BASE + world.alpha_id
    script = (
        "setsid sleep 301.7 &\n"
        "nohup sleep 302.7 >/dev/null 2>&1 &\n"
        "( trap '' TERM HUP INT; exec sleep 303.7 ) &\n"
        "( ( sleep 304.7 & ) & )\n"
        "sleep 0.5; echo started\n"
    )
    done = world.run(script)
    assert done["state"] == "SUCCEEDED", done
    assert _wait_no_leftovers(uid, ".7") == []


def test_memory_above_its_limit_is_stopped_by_the_kernel(world: World) -> None:
    code = "x = bytearray(600 * 2**20); import time; time.sleep(30)"
    done = world.run(f'python3 -c "{code}"', memory_mb=128)
    assert done["state"] == "FAILED", done
    assert "out of memory" in (done["state_reason"] or "").lower() or "OUT_OF_MEMORY" in (
        done["state_reason"] or ""
    ), done["state_reason"]
    world.healthy()


def test_processes_are_bounded(world: World) -> None:
    """A bounded bomb (2,000 forks; a real one would take the test machine with it if the
    limit failed): it gets about PIDS_MAX, and nothing of it is left."""
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print('started', n, flush=True)\n"
    )
    done = world.run(f"python3 - <<'EOF'\n{code}EOF\n", time_limit_s=60)
    started = [line for line in done["log"].splitlines() if line.startswith("started ")]
    assert started, done
    assert int(started[-1].split()[1]) <= PIDS_MAX
    assert _wait_no_leftovers(UID_BASE + world.alpha_id, "python3 -") == []
    world.healthy()


# ---- devices and network --------------------------------------------------------------------


def test_only_its_own_gpu_is_there(world: World) -> None:
    script = (
        'echo "visible=$CUDA_VISIBLE_DEVICES"\n'
        "for i in 0 1 2 3; do [ -e /dev/nvidia$i ] && echo have$i; done\n"
        "ls /dev\n"
    )
    done = world.run(script, gpus=1)
    assert done["state"] == "SUCCEEDED", done
    have = [line for line in done["log"].splitlines() if line.startswith("have")]
    assert len(have) == 1, done["log"]
    if world.executor == "local":  # the placement names the virtual GPU
        (gpu,) = next(iter(done["placement"].values()))["gpu_ids"]
        assert have == [f"have{gpu}"]


def test_no_network_beyond_its_own_loopback(world: World) -> None:
    port = world.facility.port
    code = (
        "import socket\n"
        "for host, port in (('127.0.0.1', PORT), ('10.0.0.1', 80), ('1.1.1.1', 53)):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close()\n"
        "        print('REACHED', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, exc.strerror)\n"
    ).replace("PORT", str(port))
    done = world.run(f"python3 - <<'EOF'\n{code}EOF\nip -o link 2>/dev/null | cut -d: -f2")
    assert "REACHED" not in done["log"], done["log"]
    assert sum(line.startswith("refused ") for line in done["log"].splitlines()) == 3
    with pytest.raises(ApiError) as refused:
        world.alpha.submit(["true"], project="alpha", network="open")
    assert (refused.value.status, refused.value.errors[0]["field"]) == (422, "network")


def test_no_further_namespaces_mounts_or_privileges(world: World) -> None:
    script = (
        "unshare -U true 2>/dev/null && echo MADE-USERNS || echo no-userns\n"
        "mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED || echo no-mount\n"
        "su -c id root </dev/null 2>/dev/null && echo ROOT || echo no-root\n"
        "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status\n"
    )
    done = world.run(script)
    log = done["log"]
    for refused in ("no-userns", "no-mount", "no-root"):
        assert refused in log, log
    assert "NoNewPrivs:\t1" in log
    assert "CapEff:\t0000000000000000" in log


# ---- its own records ------------------------------------------------------------------------


def test_it_cannot_forge_its_records_or_point_the_facility_at_secrets(world: World) -> None:
    data = world.facility.data_dir
    forged = json.dumps({"outcome": "succeeded", "exit_code": 0, "usage": {"wall_s": 0}})
    script = (
        f'ln -sf "{data}/initial-admin-password" "$AIFACTORY_PROGRESS_FILE"\n'
        f'for d in "{data}"/jobs/*/attempt-*; do echo \'{forged}\' > "$d/exit.json"; done'
        " 2>/dev/null\n"
        "exit 3\n"
    )
    done = world.run(script)
    assert (done["state"], done["exit_code"]) == ("FAILED", 3)
    progress = world.alpha.progress(done["id"])
    assert progress["latest"] is None  # the link was not followed
    assert world.facility.password not in json.dumps(progress)
    assert world.admin.job(world.beta_job)["state"] == "SUCCEEDED"


def test_working_directories_it_does_not_own_are_refused(world: World) -> None:
    beta_work = world.facility.data_dir / "jobs" / str(world.beta_job) / "work"
    for workdir in (world.facility.data_dir, beta_work, Path("/tmp")):
        job = world.alpha.submit(["true"], project="alpha", working_dir=str(workdir))
        done = world.alpha.wait(job["id"], timeout_s=120, poll_s=0.2)
        assert done["state"] == "FAILED", done
        reason = done["state_reason"] or ""
        assert "does not belong" in reason or "not in a directory given to projects" in reason


def test_the_facility_keeps_its_files_to_itself(world: World) -> None:
    data = world.facility.data_dir
    assert (data / "aifactory.db").stat().st_mode & 0o077 == 0
    assert (data / "initial-admin-password").stat().st_mode & 0o777 == 0o600
    shared = world.executor == "slurm"  # the nodes reach jobs' dirs, through it only
    assert data.stat().st_mode & 0o777 == (0o711 if shared else 0o700)
    assert os.stat(data / "jobs").st_mode & 0o777 == (0o711 if shared else 0o700)
