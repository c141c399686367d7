"""Train → serve → call, through a real facility (`aifactory up`), with the official `openai`
client (issue 19): a tiny Dutch model trained by the recipe is served by an endpoint whose
replica is a job of the project; a project's inference key calls it at `/v1`, streamed and not;
what each call used is recorded to the token and priced at the programme's token tariffs in
`usage`; bad, revoked and spent keys, keys over their rate and other projects' keys are
refused as the OpenAI API refuses, without asking the engine. Replicas heal when killed, scale
with load and to zero when idle, and an extra replica preempted by training fails no request.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import openai
import psutil
import pytest

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow

MODEL = "dutch"
PROMPT, COMPLETION = Decimal("0.20"), Decimal("0.60")  # € per million tokens (research)
TRAIN = [
    sys.executable, "-m", "aifactory.recipes.dutch_gpt", "pretrain", "--config", "tiny",
    "--steps", "30", "--eval-every", "30", "--checkpoint-every", "30",
]  # fmt: skip


@dataclass
class World:
    facility: FacilityProcess
    ann: Client  # owner of project nlp
    bob: Client  # owner of project other
    trained: int  # the training job


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("inference")
    facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=2, cpus=6)
    facility.start()
    try:
        with facility.client() as admin:
            admin.create_organisation("labs", "university")
            tokens = {user: admin.create_user(user)["token"] for user in ("ann", "bob")}
            admin.create_project("nlp", "labs", owner="ann")
            admin.create_project("other", "labs", owner="bob")
            research = next(p for p in admin.programmes() if p["name"] == "research")
            research |= {"prompt_token_tariff": str(PROMPT), "completion_token_tariff": "0.60"}
            admin.update_programme("research", _editable(research))
            now = datetime.now(UTC)
            for project, quota in (("nlp", None), ("other", 1)):
                admin.create_allocation(
                    project=project, programme="research", gpu_hours=100, quota_gpus=quota,
                    valid_from=now - timedelta(days=1), valid_to=now + timedelta(days=30),
                    reason="test",
                )  # fmt: skip
        ann, bob = Client(facility.url, tokens["ann"]), Client(facility.url, tokens["bob"])
        job = ann.submit(TRAIN, project="nlp", cpus=1, memory_mb=2048, time_limit_s=600)
        trained = ann.wait(job["id"], timeout_s=300)
        assert trained["state"] == "SUCCEEDED", ann.logs(job["id"])["text"]
        yield World(facility, ann, bob, job["id"])
        ann.close()
        bob.close()
    finally:
        facility.stop()  # first: its autoscaler would replace the replicas killed next
        facility.kill_leftover_jobs()


@pytest.fixture(scope="module")
def served(world: World) -> dict[str, Any]:
    made = world.ann.create_endpoint(MODEL, project="nlp", source_job=world.trained, memory_mb=2048)
    key = world.ann.create_inference_key("app", project="nlp")["key"]
    with openai.OpenAI(base_url=f"{world.facility.url}/v1", api_key=key, max_retries=0) as oa:
        deadline = time.monotonic() + 120
        while True:  # until its replica has started and its engine listens
            try:
                oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=1)
                break
            except openai.InternalServerError:
                assert time.monotonic() < deadline, world.ann.endpoint(MODEL, project="nlp")
                time.sleep(0.5)
    assert counted(world, 1)["requests"] == 1  # the call that found it ready, written
    return {"endpoint": made, "key": key}


def _editable(programme: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in programme.items() if k not in ("name", "created_at")}


def counted(world: World, requests: int) -> dict[str, Any]:
    """The endpoint once it has counted `requests` requests (the gateway writes in batches)."""
    deadline = time.monotonic() + 10
    while True:
        found = world.ann.endpoint(MODEL, project="nlp")
        if found["requests"] >= requests or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def gateway(world: World, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{world.facility.url}/v1", api_key=key, max_retries=0)


def test_the_served_model_answers_the_official_client(world: World, served: dict[str, Any]) -> None:
    (replica,) = served["endpoint"]["running"]
    assert world.ann.job(replica["job_id"])["project"] == "nlp"  # a job of the project's
    before = world.ann.endpoint(MODEL, project="nlp")
    with gateway(world, served["key"]) as oa:
        assert [m.id for m in oa.models.list()] == [MODEL]
        prompt = "Het is een mooie dag in "
        done = oa.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0)
        assert done.choices[0].text
        assert done.usage is not None
        assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (len(prompt), 16)
        stream = oa.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Vertel over Utrecht."}],
            max_tokens=12,
            stream=True,
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert all(c.usage is None for c in chunks)  # not asked for: not given
    after = counted(world, before["requests"] + 2)  # recorded in batches: within moments
    assert after["requests"] - before["requests"] == 2
    chat_prompt = len("user: Vertel over Utrecht.\nassistant:")
    assert after["prompt_tokens"] - before["prompt_tokens"] == len(prompt) + chat_prompt
    assert after["completion_tokens"] - before["completion_tokens"] == 16 + 12
    (key,) = [k for k in world.ann.inference_keys(project="nlp") if k["name"] == "app"]
    assert key["tokens_used"] == after["prompt_tokens"] + after["completion_tokens"]


def test_keys_that_are_not_good_are_refused_before_any_engine_is_asked(
    world: World, served: dict[str, Any]
) -> None:
    before = world.ann.endpoint(MODEL, project="nlp")["requests"]
    with gateway(world, "aik_not-a-key") as oa, pytest.raises(openai.AuthenticationError):
        oa.models.list()

    made = world.ann.create_inference_key("short", project="nlp", token_budget=5)
    with gateway(world, made["key"]) as oa:
        first = oa.completions.create(model=MODEL, prompt="Hallo daar", max_tokens=4)
        assert first.usage is not None  # 14 tokens: the budget of 5 is spent now
        with pytest.raises(openai.RateLimitError) as spent:
            oa.completions.create(model=MODEL, prompt="Nog eens", max_tokens=4)
        assert spent.value.response.headers["retry-after"] == "60"
    world.ann.revoke_inference_key(made["id"])
    with gateway(world, made["key"]) as oa, pytest.raises(openai.AuthenticationError):
        oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=2)

    theirs = world.bob.create_inference_key("theirs", project="other")["key"]
    with gateway(world, theirs) as oa:
        assert [m.id for m in oa.models.list()] == []
        with pytest.raises(openai.NotFoundError):
            oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=2)
    time.sleep(0.5)  # anything still to be written of those refused would be by now
    assert world.ann.endpoint(MODEL, project="nlp")["requests"] == before + 1  # only `first`


def test_only_owners_make_keys_and_endpoints_serve_finished_jobs(
    world: World, served: dict[str, Any]
) -> None:
    with pytest.raises(ApiError) as theirs:
        world.bob.create_inference_key("sneaky", project="nlp")
    assert theirs.value.status == 404  # bob does not see project nlp
    running = world.ann.submit(["sleep", "60"], project="nlp")
    with pytest.raises(ApiError) as unfinished:
        world.ann.create_endpoint("early", project="nlp", source_job=running["id"])
    assert unfinished.value.status == 422
    world.ann.cancel(running["id"])
    with pytest.raises(ApiError) as taken:
        world.ann.create_endpoint(MODEL, project="nlp", source_job=world.trained)
    assert taken.value.status == 409


def test_tokens_and_euros_reach_usage_and_a_keys_budget_stops_it(
    world: World, served: dict[str, Any]
) -> None:
    made = world.ann.create_inference_key("metered", project="nlp", budget_eur="0.01")
    asked = []
    with gateway(world, made["key"]) as oa:
        for _ in range(3):
            done = oa.completions.create(model=MODEL, prompt="Amsterdam is " * 100, max_tokens=8)
            assert done.usage is not None
            asked.append((done.usage.prompt_tokens, done.usage.completion_tokens))
    prompt, completion = (sum(a[i] for a in asked) for i in (0, 1))
    exact = (
        Fraction(prompt) * Fraction(PROMPT) + Fraction(completion) * Fraction(COMPLETION)
    ) / 10**6
    found = _until(lambda: _key_usage(world, "metered"), lambda row: row["requests"] == 3)
    assert (found["prompt_tokens"], found["completion_tokens"]) == (prompt, completion)
    assert Decimal(found["cost"]) == round(Decimal(exact.numerator) / exact.denominator, 2)
    assert Decimal(found["subsidy"]) <= Decimal(found["cost"])  # research: its subsidy on it
    (key,) = [k for k in world.ann.inference_keys(project="nlp") if k["name"] == "metered"]
    assert key["budget_eur"] == "0.01"
    assert key["tokens_used"] == prompt + completion

    with gateway(world, made["key"]) as oa, pytest.raises(openai.RateLimitError) as spent:
        while True:  # € 0.00024 a call: the budget of a cent is spent within 40
            oa.completions.create(model=MODEL, prompt="Utrecht " * 150, max_tokens=4)
    assert spent.value.code == "insufficient_quota"
    spent_at = world.ann.endpoint(MODEL, project="nlp")["requests"]  # a budgeted key's: at once
    with gateway(world, made["key"]) as oa, pytest.raises(openai.RateLimitError):
        oa.completions.create(model=MODEL, prompt="Nog eens", max_tokens=4)
    time.sleep(0.5)
    assert world.ann.endpoint(MODEL, project="nlp")["requests"] == spent_at  # no engine asked


def test_a_stream_cut_short_by_its_caller_is_metered_as_far_as_it_got(
    world: World, served: dict[str, Any]
) -> None:
    made = world.ann.create_inference_key("leaver", project="nlp", token_budget=10**6)
    with gateway(world, made["key"]) as oa:
        stream = oa.completions.create(
            model=MODEL, prompt="Er was eens", max_tokens=4000, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        first = [next(iter(stream)) for _ in range(3)]
        stream.close()  # the caller leaves after three chunks
    assert all(chunk.usage is None for chunk in first)  # asked for the last chunk's only
    (key,) = _until(
        lambda: [k for k in world.ann.inference_keys(project="nlp") if k["name"] == "leaver"],
        lambda keys: keys[0]["tokens_used"] > 0,
    )
    assert len("Er was eens") + 2 <= key["tokens_used"] < len("Er was eens") + 4000
    with gateway(world, made["key"]) as oa, pytest.raises(openai.BadRequestError) as bad:
        oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=2, extra_body={"stream": 1})
    assert "stream must be true or false" in str(bad.value)


def test_a_key_over_its_requests_per_minute_waits_as_told(
    world: World, served: dict[str, Any]
) -> None:
    made = world.ann.create_inference_key("paced", project="nlp", rpm=2)
    with gateway(world, made["key"]) as oa:
        for _ in range(2):
            oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=1)
        with pytest.raises(openai.RateLimitError) as limited:
            oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=1)
    assert limited.value.code == "rate_limit_exceeded"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60


def test_a_killed_replica_fails_its_request_cleanly_and_the_endpoint_heals(
    world: World, served: dict[str, Any]
) -> None:
    (replica,) = world.ann.endpoint(MODEL, project="nlp")["running"]
    engine = _engine_process(replica["job_id"])
    with gateway(world, served["key"]) as oa:
        stream = oa.completions.create(
            model=MODEL, prompt="Er was eens", max_tokens=4000, stream=True
        )
        next(iter(stream))  # it answers: now kill it mid-answer
        engine.send_signal(signal.SIGKILL)
        with pytest.raises(openai.APIError, match="replica stopped"):
            for _ in stream:
                pass
    failed = world.ann.wait(replica["job_id"], timeout_s=60)
    assert failed["state"] == "FAILED"
    with gateway(world, served["key"]) as oa:  # a new replica takes over (a cold start)
        healed = oa.completions.create(model=MODEL, prompt="Hallo", max_tokens=2, timeout=120)
    assert healed.choices[0].text is not None
    (now,) = world.ann.endpoint(MODEL, project="nlp")["running"]
    assert now["job_id"] != replica["job_id"]


@pytest.mark.timeout(300)
def test_replicas_follow_load_up_and_down_to_zero(world: World, served: dict[str, Any]) -> None:
    made = world.ann.create_endpoint(
        "auto", project="nlp", source_job=world.trained, replicas=0, max_replicas=2,
        concurrency=1, idle_timeout_s=4, memory_mb=1024,
    )  # fmt: skip
    assert made["running"] == []  # none until asked
    key = world.ann.create_inference_key("auto", project="nlp", models=["auto"])["key"]
    with gateway(world, key) as oa:  # the first request waits for a cold start
        first = oa.completions.create(model="auto", prompt="Hallo", max_tokens=2, timeout=120)
    assert first.usage is not None
    failures = _under_load(
        world, key, "auto", threads=4, until=lambda: _replicas(world, "auto") >= 2
    )
    assert failures == []
    assert _until(lambda: _replicas(world, "auto"), lambda n: n == 0, timeout_s=90) == 0


@pytest.mark.timeout(300)
def test_an_extra_replica_preempted_by_training_fails_no_request(
    world: World, served: dict[str, Any]
) -> None:
    world.ann.create_endpoint(
        "gpu", project="nlp", source_job=world.trained, replicas=1, max_replicas=2,
        concurrency=1, idle_timeout_s=20, gpus=1, memory_mb=1024, time_limit_s=3600,
    )  # fmt: skip
    key = world.ann.create_inference_key("gpu", project="nlp", models=["gpu"])["key"]
    with gateway(world, key) as oa:
        oa.completions.create(model="gpu", prompt="Hallo", max_tokens=2, timeout=60)
    preempted: list[int] = []

    def training_reclaims() -> bool:
        if not preempted:
            if _started(world, "gpu") < 2:
                return False
            # both GPUs serve now; project other trains in its guaranteed quota of one
            preempted.append(world.bob.submit(["sleep", "5"], project="other", gpus=1)["id"])
        return world.bob.job(preempted[0])["state"] == "SUCCEEDED"  # and the load went on

    failures = _under_load(world, key, "gpu", threads=3, until=training_reclaims)
    assert failures == []  # the preempted replica answered what it had; the rest went on
    extra = [j for j in world.ann.jobs(project="nlp") if j["name"].startswith("endpoint-gpu")]
    events = [e for j in extra for e in world.ann.job(j["id"])["events"]]
    assert any(e["to_state"] == "PREEMPTED" for e in events)  # training did reclaim its GPU
    world.ann.delete_endpoint("gpu", project="nlp")


def _under_load(
    world: World, key: str, model: str, *, threads: int, until: Callable[[], bool]
) -> list[str]:
    """Requests from `threads` clients at once until `until()` (at most two minutes); what
    failed, by error."""
    stop, failures = threading.Event(), []

    def client() -> None:
        with gateway(world, key) as oa:
            while not stop.is_set():
                try:
                    oa.completions.create(model=model, prompt="De zon ", max_tokens=48, timeout=120)
                except openai.APIError as error:
                    failures.append(repr(error))

    running = [threading.Thread(target=client) for _ in range(threads)]
    for each in running:
        each.start()
    try:
        _until(until, bool, timeout_s=120)
    finally:
        stop.set()
        for each in running:
            each.join()
    return failures


def _until(read: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = read()
        if done(found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.25)


def _replicas(world: World, name: str) -> int:
    return len(world.ann.endpoint(name, project="nlp")["running"])


def _started(world: World, name: str) -> int:
    found = world.ann.endpoint(name, project="nlp")
    return sum(1 for r in found["running"] if r["state"] == "RUNNING")


def _key_usage(world: World, key: str) -> dict[str, Any]:
    rows = [r for r in world.ann.usage(project="nlp")["tokens"] if r["key"] == key]
    return rows[0] if rows else {"requests": 0}


def _engine_process(job_id: int) -> psutil.Process:
    """The replica's engine (its Python process, inside its sandbox)."""
    for process in psutil.process_iter(["cmdline"]):
        if (process.info["cmdline"] or [])[1:4] == ["-m", "aifactory.recipes.dutch_gpt", "serve"]:
            with contextlib.suppress(psutil.Error):
                if process.environ().get("AIFACTORY_JOB_ID") == str(job_id):
                    return process
    raise AssertionError(f"no engine of job {job_id}")
