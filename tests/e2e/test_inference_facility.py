"""Train → serve → call, through a real facility (`aifactory up`), with the official `openai`
client (issue 19): a tiny Dutch model trained by the recipe is served by an endpoint whose
replica is a job of the project; a project's inference key calls it at `/v1`, streamed and not;
what each call used is recorded to the token; bad, revoked and spent keys and other projects'
keys are refused as the OpenAI API refuses, without asking the engine."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow

MODEL = "dutch"
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
    facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=0, cpus=4)
    facility.start()
    try:
        with facility.client() as admin:
            admin.create_organisation("labs", "university")
            tokens = {user: admin.create_user(user)["token"] for user in ("ann", "bob")}
            admin.create_project("nlp", "labs", owner="ann")
            admin.create_project("other", "labs", owner="bob")
        ann, bob = Client(facility.url, tokens["ann"]), Client(facility.url, tokens["bob"])
        job = ann.submit(TRAIN, project="nlp", cpus=1, memory_mb=2048, time_limit_s=600)
        trained = ann.wait(job["id"], timeout_s=300)
        assert trained["state"] == "SUCCEEDED", ann.logs(job["id"])["text"]
        yield World(facility, ann, bob, job["id"])
        ann.close()
        bob.close()
    finally:
        facility.kill_leftover_jobs()
        facility.stop()


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
