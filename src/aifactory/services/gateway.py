"""What the gateway (`/v1`) asks before and after it forwards a request to an engine: is this
key good for this model, and where are the model's replicas; then, what the request used.

A refusal carries the OpenAI API's status and error type, so the gateway answers as the API
its callers know: 401 for a key that is not (or no longer) good, 404 for a model the key may
not call or that does not exist (the same answer: a key learns nothing of other projects'
models), 429 when the key's token budget is spent (and no engine is asked), 503 when no replica
of the model is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactory.domain.jobfiles import work_dir
from aifactory.domain.jobs import JobState
from aifactory.services.auth import hash_token
from aifactory.services.endpoints import SOCKET
from aifactory.store.models import Endpoint, InferenceKey, InferenceUsage, Job


class Refusal(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code


@dataclass(frozen=True, slots=True)
class Route:
    key_id: int
    project_id: int
    endpoint_id: int
    sockets: tuple[Path, ...]  # of the replicas that are running, by job id
    token_budget: int | None = None  # the key's: its requests are counted before they answer


def authorize(
    session: Session, token: str | None, model: object, *, jobs_dir: Path, now: float
) -> Route:
    key = _key(session, token, now)
    if not isinstance(model, str) or not model:
        raise Refusal(400, "you must give a model", "invalid_request_error", "model_missing")
    endpoint = _endpoint(session, key, model)
    if key.token_budget is not None and key.tokens_used >= key.token_budget:
        raise Refusal(
            429,
            f"this key's budget of {key.token_budget} tokens is spent",
            "insufficient_quota",
            "insufficient_quota",
        )
    running = session.scalars(
        select(Job.id)
        .where(Job.endpoint_id == endpoint.id, Job.state == JobState.RUNNING.value)
        .order_by(Job.id)
    ).all()
    sockets = tuple(work_dir(jobs_dir / str(job_id)) / SOCKET for job_id in running)
    if not sockets:
        raise Refusal(503, f"no replica of {model} is running yet", "server_error", "unavailable")
    return Route(key.id, key.project_id, endpoint.id, sockets, key.token_budget)


def models(session: Session, token: str | None, *, now: float) -> list[tuple[str, float]]:
    """(name, created) of the models the key may call."""
    key = _key(session, token, now)
    stmt = select(Endpoint.name, Endpoint.created_at).where(
        Endpoint.project_id == key.project_id, Endpoint.deleted_at.is_(None)
    )
    allowed = set(key.models) if key.models else None
    return [(n, c) for n, c in session.execute(stmt) if allowed is None or n in allowed]


def record(
    session: Session,
    route: Route,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    status: int,
    ms: float,
    now: float,
) -> None:
    """One request's usage, and its tokens against the key's budget."""
    session.add(
        InferenceUsage(
            key_id=route.key_id,
            project_id=route.project_id,
            endpoint_id=route.endpoint_id,
            at=now,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            status=status,
            ms=ms,
        )
    )
    used = prompt_tokens + completion_tokens
    if used:
        session.execute(
            update(InferenceKey)
            .where(InferenceKey.id == route.key_id)
            .values(tokens_used=InferenceKey.tokens_used + used)
        )


def _key(session: Session, token: str | None, now: float) -> InferenceKey:
    bad = Refusal(401, "the API key is not valid", "invalid_request_error", "invalid_api_key")
    if not token:
        raise Refusal(401, "you must give an API key (Bearer)", "invalid_request_error", None)
    key = session.scalars(
        select(InferenceKey).where(InferenceKey.token_hash == hash_token(token))
    ).first()
    if key is None or key.revoked_at is not None:
        raise bad
    if key.expires_at is not None and key.expires_at <= now:
        raise bad
    return key


def _endpoint(session: Session, key: InferenceKey, model: str) -> Endpoint:
    allowed = key.models is None or model in key.models
    endpoint = session.scalars(
        select(Endpoint).where(
            Endpoint.project_id == key.project_id,
            Endpoint.name == model,
            Endpoint.deleted_at.is_(None),
        )
    ).first()
    if endpoint is None or not allowed:
        raise Refusal(
            404, f"the model {model} does not exist", "invalid_request_error", "model_not_found"
        )
    return endpoint
