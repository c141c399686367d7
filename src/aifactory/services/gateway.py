"""What the gateway (`/v1`) asks before and after it forwards a request to an engine: is this
key good for this model, and where are the model's replicas; then, what the request used.

A refusal carries the OpenAI API's status and error type, so the gateway answers as the API
its callers know: 401 for a key that is not (or no longer) good, 404 for a model the key may
not call or that does not exist (the same answer: a key learns nothing of other projects'
models), 429 when the key's budget (tokens or euros) is spent (and no engine is asked), 503
when no replica of the model runs or starts in time.

A request is priced when it is asked (`authorize`): at the token tariffs of the programme of
the project's allocation that pays (the one valid now that expires first), each request's price
exact in nano-cents (domain.money), summed for the key's € budget and, per hour, into the
allocation's ledger (accounting.tokens). A project with no allocation valid now is metered,
not billed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from aifactory.domain.jobfiles import work_dir
from aifactory.domain.jobs import JobState
from aifactory.domain.money import NANOCENTS_PER_EURO, token_nanocents
from aifactory.services.auth import hash_token
from aifactory.services.endpoints import SOCKET
from aifactory.store.models import (
    Allocation,
    Endpoint,
    InferenceKey,
    InferenceUsage,
    Job,
    Programme,
)

NANOCENTS_PER_CENT = NANOCENTS_PER_EURO // 100


class Refusal(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Price:
    """Who pays for a request, and at what terms (fixed when it is asked)."""

    allocation_id: int | None = None  # None: metered, not billed
    prompt: Decimal = Decimal(0)  # € per million tokens
    completion: Decimal = Decimal(0)
    subsidy_pct: int = 0

    def nanocents(self, prompt_tokens: int, completion_tokens: int) -> int:
        return token_nanocents(prompt_tokens, self.prompt) + token_nanocents(
            completion_tokens, self.completion
        )


@dataclass(frozen=True, slots=True)
class Route:
    key_id: int
    project_id: int
    endpoint_id: int
    sockets: tuple[Path, ...]  # of the replicas that are running and not draining, by job id
    token_budget: int | None = None  # the key's
    budget_cents: int | None = None  # the key's; with either, requests are counted at once
    price: Price = Price()
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int = 4  # requests one replica serves at once
    model: str = ""
    trouble: str | None = None  # why no replica is being started

    @property
    def budgeted(self) -> bool:
        return self.token_budget is not None or self.budget_cents is not None


def authorize(
    session: Session, token: str | None, model: object, *, jobs_dir: Path, now: float
) -> Route:
    """The route for a key and model; its `sockets` are empty while no replica runs (the
    gateway then asks for one, `want_replica`, and waits)."""
    key = _key(session, token, now)
    if not isinstance(model, str) or not model:
        raise Refusal(400, "you must give a model", "invalid_request_error", "model_missing")
    endpoint = _endpoint(session, key, model)
    _check_budget(key)
    draining = {int(j) for j in endpoint.draining or {}}
    running = session.scalars(
        select(Job.id)
        .where(Job.endpoint_id == endpoint.id, Job.state == JobState.RUNNING.value)
        .order_by(Job.id)
    ).all()
    sockets = tuple(
        work_dir(jobs_dir / str(job_id)) / SOCKET for job_id in running if job_id not in draining
    )
    return Route(
        key.id,
        key.project_id,
        endpoint.id,
        sockets,
        key.token_budget,
        key.budget_cents,
        price_of(session, key.project_id, now),
        key.rpm,
        key.tpm,
        endpoint.concurrency,
        model,
        endpoint.trouble,
    )


def want_replica(session: Session, endpoint_id: int, *, now: float) -> None:
    """A request found no replica running: the autoscaler starts one (control.endpoints)."""
    session.execute(update(Endpoint).where(Endpoint.id == endpoint_id).values(wanted_at=now))


def price_of(session: Session, project_id: int, now: float) -> Price:
    """The terms of the project's allocation valid now that expires first (as jobs pick theirs,
    domain.programmes.payer), or none."""
    found = session.execute(
        select(Allocation.id, Programme)
        .join(Programme, Programme.id == Allocation.programme_id)
        .where(
            Allocation.project_id == project_id,
            Allocation.valid_from <= now,
            Allocation.valid_to > now,
        )
        .order_by(Allocation.valid_to, Allocation.id)
        .limit(1)
    ).first()
    if found is None:
        return Price()
    allocation_id, programme = found
    return Price(
        allocation_id,
        Decimal(programme.prompt_token_tariff),
        Decimal(programme.completion_token_tariff),
        programme.subsidy_pct,
    )


def _check_budget(key: InferenceKey) -> None:
    spent = None
    if key.token_budget is not None and key.tokens_used >= key.token_budget:
        spent = f"{key.token_budget} tokens"
    if (
        key.budget_cents is not None
        and key.spent_nanocents >= key.budget_cents * NANOCENTS_PER_CENT
    ):
        spent = f"€ {key.budget_cents / 100:.2f}"
    if spent is not None:
        raise Refusal(
            429,
            f"this key's budget of {spent} is spent",
            "insufficient_quota",
            "insufficient_quota",
        )


def models(session: Session, token: str | None, *, now: float) -> list[tuple[str, float]]:
    """(name, created) of the models the key may call."""
    key = _key(session, token, now)
    stmt = select(Endpoint.name, Endpoint.created_at).where(
        Endpoint.project_id == key.project_id, Endpoint.deleted_at.is_(None)
    )
    allowed = set(key.models) if key.models else None
    return [(n, c) for n, c in session.execute(stmt) if allowed is None or n in allowed]


@dataclass(frozen=True, slots=True)
class Used:
    """What one request used, as the gateway hands it over to be written."""

    route: Route
    prompt_tokens: int
    completion_tokens: int
    status: int
    ms: float
    at: float


def record(session: Session, batch: Sequence[Used]) -> None:
    """Requests' usage, each priced at its route's terms, in one insert; their tokens and price
    against their keys' budgets, in one update per key."""
    rows: list[dict[str, object]] = []
    spent: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])  # key → tokens, nano-cents
    for used in batch:
        route = used.route
        cost = route.price.nanocents(used.prompt_tokens, used.completion_tokens)
        rows.append(
            {
                "key_id": route.key_id,
                "project_id": route.project_id,
                "endpoint_id": route.endpoint_id,
                "at": used.at,
                "prompt_tokens": used.prompt_tokens,
                "completion_tokens": used.completion_tokens,
                "status": used.status,
                "ms": used.ms,
                "allocation_id": route.price.allocation_id,
                "cost_nanocents": cost,
                "subsidy_pct": route.price.subsidy_pct,
            }
        )
        spent[route.key_id][0] += used.prompt_tokens + used.completion_tokens
        spent[route.key_id][1] += cost
    if not rows:
        return
    session.execute(insert(InferenceUsage), rows)
    for key_id, (tokens, cost) in sorted(spent.items()):
        if tokens or cost:
            session.execute(
                update(InferenceKey)
                .where(InferenceKey.id == key_id)
                .values(
                    tokens_used=InferenceKey.tokens_used + tokens,
                    spent_nanocents=InferenceKey.spent_nanocents + cost,
                )
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
