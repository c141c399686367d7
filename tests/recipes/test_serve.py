"""The recipe's own engine against the official `openai` client (a client no one here wrote):
a model trained by the recipe answers `models`, `completions` and `chat.completions`, streamed
and not, with usage to the token; what a request gets wrong is answered in the API's shape.
The facility's gateway (keys, metering, routing) is issue 19's next part; this is the engine."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from aifactory.recipes.dutch_gpt.generate import Generated, Generator, Sampling
from aifactory.recipes.dutch_gpt.serve import Engine, server
from tests.recipes.conftest import Reference

MODEL = "dutch-gpt-tiny"


@pytest.fixture(scope="module")
def generator(reference: Reference) -> Generator:
    return Generator.from_checkpoint(reference.root / "checkpoints")


@pytest.fixture(scope="module")
def engine_url(generator: Generator) -> Iterator[str]:
    listening = server(Engine(generator, MODEL))
    thread = threading.Thread(target=listening.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listening.server_address[1]}"
    finally:
        listening.shutdown()
        listening.server_close()


@pytest.fixture
def client(engine_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{engine_url}/v1", api_key="unused", max_retries=0) as made:
        yield made


def test_the_model_is_listed(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]


def test_a_completion_counts_its_tokens_as_bytes(client: openai.OpenAI) -> None:
    prompt = "Het is een mooie dag in Utrecht, "
    done = client.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0)

    (choice,) = done.choices
    assert choice.finish_reason == "length"
    assert choice.text
    assert done.usage is not None
    assert done.usage.prompt_tokens == len(prompt.encode())
    assert done.usage.completion_tokens == 24
    assert len(choice.text.encode()) <= 24  # one token is one byte (a broken one: U+FFFD)
    again = client.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0)
    assert again.choices[0].text == choice.text  # greedy: the same text every time


def test_a_streamed_chat_says_what_the_whole_one_says(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Vertel over de zee."}]
    whole = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=30, temperature=0.8, seed=11
    )
    pieces = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=30,
        temperature=0.8,
        seed=11,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(pieces)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert whole.choices[0].message.role == "assistant"
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 30
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_a_stop_string_ends_the_completion_before_it(generator: Generator) -> None:
    prompt = "De kat zat op de mat. De hond"
    free = "".join(generator.stream(prompt, Sampling(40, 0.0), Generated(0)))
    stop = free[5:7]  # a stop string that greedy decoding is sure to meet
    done = Generated(0)
    cut = "".join(generator.stream(prompt, Sampling(40, 0.0, stop=(stop,)), done))

    assert done.finish_reason == "stop"
    assert cut == free[: free.index(stop)]


def test_bad_requests_are_answered_in_the_apis_shape(
    client: openai.OpenAI, engine_url: str
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="hallo", max_tokens=5)
    with pytest.raises(openai.BadRequestError) as too_many:
        client.completions.create(model=MODEL, prompt="hallo", max_tokens=100_000)
    assert "max_tokens" in str(too_many.value)
    broken = httpx.post(f"{engine_url}/v1/chat/completions", content=b"{not json")
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{engine_url}/health").json() == {"status": "ok", "model": MODEL}


def test_the_engine_runs_as_a_command_and_ends_on_sigterm(
    reference: Reference, tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "aifactory.recipes.dutch_gpt", "serve",
        "--from", str(reference.root / "checkpoints"), "--port", "0", "--name", MODEL,
        "--device", "cpu",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"[serve] model {MODEL} on http://127.0.0.1:")
        url = line.split(" on ")[1].strip()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                listed = httpx.get(f"{url}/models", timeout=1).json()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert listed["data"][0]["id"] == MODEL
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
