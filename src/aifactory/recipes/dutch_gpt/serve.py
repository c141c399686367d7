"""The recipe's own inference engine: a trained Dutch GPT behind the OpenAI API's shape
(`GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`, streamed as server-sent
events or not, with `usage`), and `GET /health` for whoever routes to it.

It needs nothing but PyTorch and the standard library, so it runs in any environment the
recipe trains in, on a CPU as on a GPU. One request generates at a time (the model is small and
the machine's threads are the job's); the others wait their turn. Errors have the API's shape:
`{"error": {"message", "type", "param", "code"}}`, 400 for what a request gets wrong, 404 for a
model it does not serve. It listens where it is told (`--host`, `--port`), by default on
loopback only: the facility's gateway, not the world, talks to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aifactory.recipes.dutch_gpt.generate import Generated, Generator, Sampling, prompt_tokens

MAX_BODY = 1024 * 1024
MAX_TOKENS = 4096


class BadRequest(ValueError):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    prompt: str
    sampling: Sampling
    stream: bool
    usage_in_stream: bool
    usage_in_chunks: bool = False  # stream_options.continuous_usage_stats (as vLLM has it)


class Engine:
    """One model, served: what the handler asks of it."""

    def __init__(self, generator: Generator, model: str) -> None:
        self.generator = generator
        self.model = model
        self.created = int(time.time())
        self.lock = threading.Lock()

    def completion(self, request: Request, done: Generated) -> Iterator[str]:
        """The completion in pieces; `done` counts its tokens and says why it ended."""
        with self.lock:
            yield from self.generator.stream(request.prompt, request.sampling, done)


def read_request(body: Mapping[str, Any], *, chat: bool, model: str) -> Request:
    """A request as the OpenAI API takes it, checked; BadRequest names the parameter."""
    if body.get("model") != model:
        raise BadRequest(f"the model {body.get('model')!r} does not exist", "model", 404)
    prompt = _chat_prompt(body.get("messages")) if chat else _prompt(body.get("prompt"))
    limit = body.get("max_completion_tokens", body.get("max_tokens", 64))
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_TOKENS:
        raise BadRequest(f"max_tokens must be a whole number from 1 to {MAX_TOKENS}", "max_tokens")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise BadRequest("seed must be a whole number", "seed")
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop must be a string or a list of up to 4 strings", "stop")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is served", "n")
    options = body.get("stream_options") or {}
    return Request(
        prompt=prompt,
        sampling=Sampling(limit, temperature, top_p, seed, tuple(stops)),
        stream=body.get("stream") is True,
        usage_in_stream=isinstance(options, dict) and options.get("include_usage") is True,
        usage_in_chunks=isinstance(options, dict)
        and options.get("include_usage") is True
        and options.get("continuous_usage_stats") is True,
    )


def _prompt(given: object) -> str:
    if isinstance(given, list) and len(given) == 1 and isinstance(given[0], str):
        given = given[0]
    if not isinstance(given, str) or not given:
        raise BadRequest("prompt must be a non-empty string", "prompt")
    return given


def _chat_prompt(messages: object) -> str:
    """The conversation as the model saw Dutch text: one line per turn, then the assistant's
    turn to speak (a base model has no chat template of its own)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", "messages")
    lines = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise BadRequest("each message needs a role and text content", "messages")
        lines.append(f"{message.get('role', 'user')}: {message['content']}")
    return "\n".join(lines) + "\nassistant:"


def _number(body: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number from {low} to {high}", name)
    return float(value)


KEEP_ALIVE_S = 5.0


class Handler(BaseHTTPRequestHandler):
    engine: Engine  # set on the server's own subclass
    protocol_version = "HTTP/1.1"
    timeout = KEEP_ALIVE_S  # an idle kept-alive connection closes: a stop waits no longer

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"status": "ok", "model": self.engine.model})
        elif self.path == "/v1/models":
            model = {
                "id": self.engine.model,
                "object": "model",
                "created": self.engine.created,
                "owned_by": "aifactory",
            }
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._error(BadRequest(f"no route {self.path}", None, 404))

    def do_POST(self) -> None:
        chat = self.path == "/v1/chat/completions"
        if not chat and self.path != "/v1/completions":
            self._error(BadRequest(f"no route {self.path}", None, 404))
            return
        try:
            request = read_request(self._body(), chat=chat, model=self.engine.model)
        except BadRequest as exc:
            self._error(exc)
            return
        reply = Reply(self.engine.model, chat=chat)
        done = Generated(prompt_tokens=prompt_tokens(request.prompt))
        if request.stream:
            self._stream(request, reply, done)
        else:
            text = "".join(self.engine.completion(request, done))
            self._json(200, reply.whole(text, done))

    def _stream(self, request: Request, reply: Reply, done: Generated) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def so_far() -> dict[str, Any]:
            return {"usage": usage(done)} if request.usage_in_chunks else {}

        if reply.chat:
            self._event(reply.chunk({"role": "assistant", "content": ""}, None) | so_far())
        for piece in self.engine.completion(request, done):
            if piece:
                self._event(reply.chunk(reply.delta(piece), None) | so_far())
        self._event(reply.chunk({} if reply.chat else "", done.finish_reason) | so_far())
        if request.usage_in_stream:
            self._event({**reply.chunk({}, None), "choices": [], "usage": usage(done)})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode())
        self.wfile.flush()

    def _body(self) -> dict[str, Any]:
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            raise BadRequest(f"the request is larger than {MAX_BODY} bytes", None, 413)
        try:
            body = json.loads(self.rfile.read(size) or b"null")
        except ValueError:
            raise BadRequest("the body is not JSON", None) from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object", None)
        return body

    def _error(self, exc: BadRequest) -> None:
        kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
        error = {"message": str(exc), "type": kind, "param": exc.param, "code": None}
        self._json(exc.status, {"error": error})

    def _json(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
        """One line per request in the job's log, without the client's address."""
        print(f"[serve] {self.command} {self.path} {code}", flush=True)


@dataclass(frozen=True, slots=True)
class Reply:
    """The API's response objects for one request."""

    model: str
    chat: bool
    id: str = ""
    created: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{'chatcmpl' if self.chat else 'cmpl'}-{uuid.uuid4().hex}")
        object.__setattr__(self, "created", int(time.time()))

    def delta(self, piece: str) -> Any:
        return {"content": piece} if self.chat else piece

    def whole(self, text: str, done: Generated) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": done.finish_reason}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice |= {"text": text, "logprobs": None}
        kind = "chat.completion" if self.chat else "text_completion"
        return self._envelope(kind) | {"choices": [choice], "usage": usage(done)}

    def chunk(self, delta: Any, finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if self.chat:
            choice["delta"] = delta
        else:
            choice |= {"text": delta, "logprobs": None}
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return self._envelope(kind) | {"choices": [choice]}

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


def usage(done: Generated) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


def server(engine: Engine, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The engine's HTTP server, bound (port 0: one the kernel picks); `serve_forever` runs it.
    Its `server_close` waits for the requests in flight (a drain: they are answered)."""
    handler = type("EngineHandler", (Handler,), {"engine": engine})
    made = ThreadingHTTPServer((host, port), handler)
    made.daemon_threads = False
    made.block_on_close = True
    return made


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = False
    block_on_close = True  # server_close waits for the requests in flight


def unix_server(engine: Engine, path: Path) -> socketserver.ThreadingUnixStreamServer:
    """The engine's HTTP server on a Unix socket at `path` (0600): how a facility's replica
    listens, in the job's own directory, where only the job's identity and the facility (which
    proxies to it after its own checks) can reach it: no port, no network at all."""
    handler = type("EngineHandler", (_UnixHandler,), {"engine": engine})
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket a stopped attempt left
    previous = os.umask(0o177)
    try:
        return _UnixServer(str(path), handler)
    finally:
        os.umask(previous)


class _UnixHandler(Handler):
    def address_string(self) -> str:
        return "unix"
