"""Interactive sessions on a real facility (`aifactory up`), with the real JupyterLab (issue 20):
a session is a job of its project with the GPUs it asked for and its datasets; its notebook
server is reached only through the facility, on the session's own origin, by whoever may use
it; a kernel and a terminal run in the job's sandbox over WebSockets through the proxy; an idle
session is stopped with the reason shown, and its GPUs go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow

CORPUS = "Het regent in Utrecht.\n"


@dataclass
class World:
    facility: FacilityProcess
    ann: Client  # owner of nlp
    mia: Client  # member of nlp
    bob: Client  # owner of other
    tokens: dict[str, str]
    browsers: list[httpx.Client] = field(default_factory=list)  # closed with the world

    def browser(self, host: str) -> httpx.Client:
        """A client of the facility that names `host` (no resolver needed for *.localhost)."""
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Host": host}, timeout=30
        )
        self.browsers.append(client)
        return client

    @property
    def port(self) -> int:
        return self.facility.port


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("sessions")
    facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=3, cpus=6)
    facility.start()
    try:
        with facility.client() as admin:
            admin.create_organisation("labs", "university")
            tokens = {user: admin.create_user(user)["token"] for user in ("ann", "mia", "bob")}
            admin.create_project("nlp", "labs", owner="ann")
            admin.add_member("nlp", "mia", role="member")
            admin.create_project("other", "labs", owner="bob")
            now = datetime.now(UTC)
            for project in ("nlp", "other"):
                admin.create_allocation(
                    project=project, programme="research", gpu_hours=100,
                    valid_from=now - timedelta(days=1), valid_to=now + timedelta(days=30),
                    reason="test",
                )  # fmt: skip
            corpus = data / "datasets" / "corpus" / "v1"
            corpus.mkdir(parents=True)
            (corpus / "data.txt").write_text(CORPUS)
            until = now + timedelta(days=30)
            admin.register_dataset(
                "corpus", path="corpus/v1", classification="public", residency="NL",
                retention_until=until, licence="CC0-1.0", controller="AI Factory NL",
                processor="AI Factory NL", purposes=["research"],
            )  # fmt: skip
            admin.grant_dataset("corpus", project="nlp", purpose="research", until=until)
        clients = {u: Client(facility.url, t) for u, t in tokens.items()}
        world = World(facility, clients["ann"], clients["mia"], clients["bob"], tokens)
        yield world
        for client in [*clients.values(), *world.browsers]:
            client.close()
    finally:
        facility.stop()
        facility.kill_leftover_jobs()


@pytest.fixture(scope="module")
def session(world: World) -> dict[str, Any]:
    started = world.ann.start_session(
        project="nlp", gpus=1, memory_mb=2048, datasets=["corpus"], idle_timeout_s=3600
    )
    ready = world.ann.wait_session_ready(started["id"], timeout_s=120)
    assert ready["ready"], world.ann.logs(started["id"])["text"]
    return ready


def enter(world: World, url: str) -> tuple[httpx.Client, str]:
    """A browser's first steps: the one-use link, traded for the cookie of the session's
    origin. The client talks to 127.0.0.1 with the session's Host (no resolver needed)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    client = world.browser(parts.netloc)
    shown = client.get(f"{parts.path}?{parts.query}")  # whose session, as whom: then its button
    assert shown.status_code == 200, shown.text
    ticket = dict(parse_qsl(parts.query))["ticket"]
    entered = client.post(
        parts.path, data={"ticket": ticket}, headers={"Origin": f"http://{parts.netloc}"}
    )
    assert entered.status_code == 303, entered.text
    cookie = entered.headers["set-cookie"].split(";")[0]
    client.headers["Cookie"] = cookie
    return client, entered.headers["location"]


def run_code(world: World, host: str, cookie: str, base: str, kernel: str, code: str) -> str:
    """Run `code` in a kernel over its WebSocket (through the proxy); what it printed."""

    async def talk() -> str:
        uri = f"ws://{host}{base}api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
        async with connect(
            uri, host="127.0.0.1", port=world.port, origin=f"http://{host}",  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie}, max_size=None,
        ) as ws:  # fmt: skip
            msg_id = uuid.uuid4().hex
            request = {
                "header": {
                    "msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                    "session": uuid.uuid4().hex, "version": "5.3", "date": "",
                },
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {
                    "code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False,
                },
            }  # fmt: skip
            await ws.send(json.dumps(request))
            printed = ""
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["msg_type"]
                if kind == "stream":
                    printed += message["content"]["text"]
                elif kind == "error":
                    raise AssertionError("\n".join(message["content"]["traceback"]))
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    return printed

    return asyncio.run(talk())


def test_a_notebook_runs_on_its_gpu_with_its_dataset_through_the_proxy(
    world: World, session: dict[str, Any]
) -> None:
    sid = session["id"]
    job = world.ann.job(sid)
    assert job["project"] == "nlp"
    assert job["gpus"] == 1  # the scheduler gave it a GPU of its own
    client, landing = enter(world, world.ann.open_session(sid))
    assert landing == f"/sessions/{sid}/lab"
    lab = client.get(landing)
    assert lab.status_code == 200
    assert "JupyterLab" in lab.text
    assert "http://" not in lab.text.replace(f"http://{client.headers['Host']}", "")  # offline
    kernel = client.post(f"/sessions/{sid}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    code = (
        "import os, pathlib\n"
        "print(os.environ['CUDA_VISIBLE_DEVICES'])\n"
        "path = os.environ['AIFACTORY_DATASET_CORPUS']\n"
        "print(path)\n"
        "print(pathlib.Path(path, 'data.txt').read_text(), end='')\n"
        "print(os.getuid())\n"
    )
    printed = run_code(
        world, client.headers["Host"], client.headers["Cookie"], f"/sessions/{sid}/",
        kernel.json()["id"], code,
    )  # fmt: skip
    gpus, path, text, uid = printed.splitlines()
    assert gpus in ("0", "1")
    assert path.endswith("corpus/v1") or "corpus" in path
    assert text == CORPUS.strip()
    assert uid != "0"  # the project's identity, never root
    busy = world.ann.session(sid)
    assert busy["state"] == "RUNNING"


def test_a_terminal_echoes_through_the_proxy(world: World, session: dict[str, Any]) -> None:
    sid = session["id"]
    client, _ = enter(world, world.ann.open_session(sid))
    made = client.post(f"/sessions/{sid}/api/terminals")
    assert made.status_code == 200, made.text
    name = made.json()["name"]
    host = client.headers["Host"]

    async def talk() -> str:
        async with connect(
            f"ws://{host}/sessions/{sid}/terminals/websocket/{name}", host="127.0.0.1",
            port=world.port, origin=f"http://{host}",  # type: ignore[arg-type]
            additional_headers={"Cookie": client.headers["Cookie"]},
        ) as ws:  # fmt: skip
            await ws.send(json.dumps(["stdin", "echo $((6*7))-through-the-proxy\r"]))
            out = ""
            while "42-through-the-proxy\r\n" not in out:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message[0] == "stdout":
                    out += message[1]
            return out

    assert "42-through-the-proxy" in asyncio.run(talk())


def test_only_who_may_use_it_gets_in(world: World, session: dict[str, Any]) -> None:
    sid = session["id"]
    with pytest.raises(ApiError) as other:
        world.bob.open_session(sid)  # another project's owner
    assert other.value.status == 404
    with pytest.raises(ApiError) as member:
        world.mia.open_session(sid)  # a member of nlp who did not start it
    assert member.value.status == 404
    host = f"s{sid}.localhost:{world.port}"
    stranger = world.browser(host)
    page = stranger.get(f"/sessions/{sid}/lab", headers={"Accept": "text/html"})
    assert page.status_code == 303  # to the portal, to sign in
    assert page.headers["location"].endswith(f"/sessions/{sid}/open")
    signin = httpx.get(f"http://127.0.0.1:{world.port}/sessions/{sid}/open", follow_redirects=False)
    assert signin.status_code in (302, 303, 307)
    assert signin.headers["location"].startswith("/login")
    bearer = stranger.get(
        f"/sessions/{sid}/api/status",
        headers={"Authorization": f"Bearer {world.tokens['bob']}", "Accept": "application/json"},
    )
    assert bearer.status_code == 401
    mine = stranger.get(
        f"/sessions/{sid}/api/status",
        headers={"Authorization": f"Bearer {world.tokens['ann']}", "Accept": "application/json"},
    )
    assert mine.status_code == 200
    assert "connections" in mine.json()


@pytest.mark.timeout(300)  # its idle timeout is the least there is: a minute
def test_an_idle_session_is_stopped_with_the_reason_and_its_gpus_go_back(world: World) -> None:
    started = world.ann.start_session(project="nlp", gpus=2, memory_mb=2048, idle_timeout_s=60)
    sid = started["id"]
    ready = world.ann.wait_session_ready(sid, timeout_s=120)
    assert ready["ready"]
    assert ready["cull_in_s"] is not None
    assert ready["cull_in_s"] <= 60
    waiting = world.ann.submit(["true"], project="nlp", gpus=2, time_limit_s=60)
    time.sleep(2)
    assert world.ann.job(waiting["id"])["state"] == "PENDING"  # 1 of 3 GPUs is free
    deadline = time.monotonic() + 150
    while True:
        found = world.ann.session(sid)
        if found["ended_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert found["state"] == "CANCELLED", found
    assert found["culled_reason"] is not None
    assert "idle for" in found["culled_reason"]
    assert "no kernel activity and no connection" in found["culled_reason"]
    done = world.ann.wait(waiting["id"], timeout_s=60)  # the GPUs it held went back
    assert done["state"] == "SUCCEEDED"
    events = [e["reason"] for e in world.ann.job(sid)["events"]]
    assert any("idle for" in (r or "") for r in events)


def cli(world: World, user: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **world.facility.env,
        "AIFACTORY_URL": world.facility.url,
        "AIFACTORY_TOKEN": world.tokens[user],
    }
    return subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_exec_runs_in_the_jobs_sandbox_as_the_job(world: World, session: dict[str, Any]) -> None:
    sid = session["id"]
    script = (
        "id -u; echo $CUDA_VISIBLE_DEVICES; cat $AIFACTORY_DATASET_CORPUS/data.txt; "
        "tr -d '\\0' < /proc/1/cmdline; echo; "
        f"test -e {world.facility.data_dir}/aifactory.db && echo SEES-FACILITY; "
        "cat; exit 7"
    )
    done = cli(world, "ann", "exec", str(sid), "--", "sh", "-c", script, stdin="from stdin\n")
    assert done.returncode == 7, done.stderr
    uid, gpu, corpus, init, rest = done.stdout.split("\n", 4)
    assert uid != "0"
    assert gpu in ("0", "1", "2")  # its one GPU of the three
    assert corpus == CORPUS.strip()
    assert "bwrap" in init  # its PID namespace: pid 1 is the sandbox's
    assert "SEES-FACILITY" not in rest
    assert rest.strip() == "from stdin"
    events = world.ann.audit(action="job.exec")
    assert any(e["object"] == f"job:{sid}" and e["actor"] == "ann" for e in events)


def test_the_jobs_environment_reaches_its_command_only_never_the_way_in(world: World) -> None:
    """The way into a sandbox runs as root (nsenter): a job's LD_PRELOAD there would run the
    job's library as root. The dynamic loader names a library it cannot find once for each
    program given it: here only the command in the sandbox."""
    missing = "/nonexistent/aifactory-hostile.so"
    secret = f"secret-{uuid.uuid4().hex}"
    env = {"LD_PRELOAD": missing, "AIF_SECRET": secret}
    job = world.ann.submit(["sleep", "60"], project="nlp", env=env)
    until_running(world, job["id"])
    try:
        done = cli(world, "ann", "exec", str(job["id"]), "--", "/bin/echo", "in")
        assert done.returncode == 0, done.stderr
        said = done.stdout + done.stderr
        assert said.count(missing) == 1, said  # echo's; not nsenter's, setpriv's, python's
        assert "in" in done.stdout
        # while a command runs, its environment is on no command line of the host (nsenter
        # waits as root for as long: any host account could read its command line)
        waiting = cli_started(world, "ann", "exec", str(job["id"]), "--", "sh", "-c", "sleep 3")
        try:
            seen = command_lines_until(lambda: waiting.poll() is not None)
        finally:
            waiting.communicate(timeout=30)
        assert any("sleep 3" in line for line in seen)  # it was looked for while it ran
        assert not any(secret in line for line in seen)
        shown = cli(world, "ann", "exec", str(job["id"]), "--", "sh", "-c", "echo $AIF_SECRET")
        assert secret in shown.stdout  # the command has it
    finally:
        world.ann.cancel(job["id"])


def cli_started(world: World, user: str, *args: str) -> subprocess.Popen[str]:
    env = {**world.facility.env, "AIFACTORY_URL": world.facility.url}
    env["AIFACTORY_TOKEN"] = world.tokens[user]
    return subprocess.Popen(
        [sys.executable, "-m", "aifactory", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def command_lines_until(done: Callable[[], bool]) -> list[str]:
    """Every process's command line on this host, looked at again and again until `done`."""
    seen: list[str] = []
    while not done():
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    seen.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        time.sleep(0.05)
    return seen


def until_running(world: World, job_id: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while world.ann.job(job_id)["state"] != "RUNNING":
        assert time.monotonic() < deadline, world.ann.job(job_id)
        time.sleep(0.3)


def test_exec_is_for_who_submitted_the_job_and_the_projects_owners(
    world: World, session: dict[str, Any]
) -> None:
    sid = session["id"]
    other = cli(world, "bob", "exec", str(sid), "--", "true")
    assert other.returncode != 0
    assert "not found" in other.stderr
    member = cli(world, "mia", "exec", str(sid), "--", "true")
    assert member.returncode != 0
    assert "only who submitted the job" in member.stderr
    with pytest.raises(ApiError) as refused:
        world.bob.exec(sid, ["true"])
    assert refused.value.status == 404
    ended = world.ann.submit(["true"], project="nlp")
    world.ann.wait(ended["id"], timeout_s=60)
    with pytest.raises(ApiError) as over:
        world.ann.exec(ended["id"], ["true"])
    assert over.value.status == 409


def test_attach_is_a_terminal_in_the_job(world: World, session: dict[str, Any]) -> None:
    shell = world.ann.job_shell(session["id"], ["sh", "-i"], tty=True, rows=30, cols=100)
    try:
        shell.send(b"stty size; echo $((6*7))-in-the-job\r")
        seen = b""
        chunks = shell.output()
        while b"42-in-the-job" not in seen:
            seen += next(chunks)
        assert b"30 100" in seen  # its terminal has this one's size
        shell.send(b"exit 3\r")
        rest = b"".join(chunks)
        assert shell.exit_code == 3, (seen + rest).decode(errors="replace")
    finally:
        shell.close()


def test_commands_that_read_nothing_hold_nothing_and_end_with_their_exchange(
    world: World, session: dict[str, Any]
) -> None:
    sid = session["id"]
    shells = [world.ann.job_shell(sid, ["sleep", "120"]) for _ in range(3)]
    try:
        for shell in shells:  # more than a pipe holds: the writes wait, in no thread
            shell.send(b"x" * 256 * 1024)
        began = time.monotonic()
        assert world.bob.sessions() == []  # the API answers meanwhile
        assert time.monotonic() - began < 5
    finally:
        for shell in shells:
            shell.close()
    deadline = time.monotonic() + 20  # a write waits at most WRITE_S: then the exchange ends
    while True:
        seen: list[bytes] = []
        world.ann.exec(sid, ["ps", "-eo", "args"], output=seen.append)
        if b"sleep 120" not in b"".join(seen) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert b"sleep 120" not in b"".join(seen)  # killed with their exchange
