"""Inference keys: what a project's applications present to the gateway (`/v1`).

A key belongs to a project and calls that project's models (or those its allow-list names); it
may expire, hold a budget in tokens (prompt and completion together) and one in euros (its
requests at the token tariffs of the programme that pays), limit its requests and tokens per
minute (gateway.limits), and be revoked. Only its
SHA-256 is kept, and the key itself is shown once, when it is made. Project owners (and admins)
make and revoke keys; whoever may see the project's endpoints sees its keys, never their
secrets.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.money import cents, cents_of_nanocents
from aifactory.domain.permissions import Action
from aifactory.errors import Conflict, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.auth import hash_token
from aifactory.services.principal import Principal
from aifactory.services.tenancy import project_by_name
from aifactory.store.models import InferenceKey, Project

KEY_PREFIX = "aik_"
DAY_S = 86400.0
MAX_TTL_DAYS = 3650
MAX_BUDGET_EUR = Decimal(10**9)


@dataclass(frozen=True, slots=True)
class KeyView:
    id: int
    name: str
    project: str
    prefix: str
    models: list[str] | None
    token_budget: int | None
    tokens_used: int
    created_by: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    budget_cents: int | None = None
    spent_cents: int = 0  # its requests' exact price, rounded once
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What a key may use: budgets and rates (None: no limit)."""

    token_budget: int | None = None
    budget_eur: Decimal | None = None
    rpm: int | None = None
    tpm: int | None = None


def create_key(
    session: Session,
    principal: Principal,
    *,
    name: str,
    project: str,
    models: Sequence[str] | None,
    ttl_days: float | None,
    now: float,
    limits: KeyLimits = KeyLimits(),
) -> tuple[KeyView, str]:
    """The key's record and the key itself (shown this once)."""
    owner = project_by_name(session, principal, project, action=Action.INFERENCE_KEY_MANAGE)
    if ttl_days is not None and not 0 < ttl_days <= MAX_TTL_DAYS:
        raise InvalidInput(f"must be above 0 and at most {MAX_TTL_DAYS} days", field="ttl_days")
    _check(limits)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = InferenceKey(
        project_id=owner.id,
        name=name,
        token_hash=hash_token(plain),
        prefix=plain[:12],
        models=list(dict.fromkeys(models)) if models else None,
        token_budget=limits.token_budget,
        tokens_used=0,
        budget_cents=cents(limits.budget_eur) if limits.budget_eur is not None else None,
        spent_nanocents=0,
        rpm=limits.rpm,
        tpm=limits.tpm,
        created_by=principal.name,
        created_at=now,
        expires_at=now + ttl_days * DAY_S if ttl_days is not None else None,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=principal.name,
        action="inference_key.create",
        object=f"inference_key:{key.id}",
        source=principal.source,
        project_id=owner.id,
        detail={
            "name": name,
            "token_budget": limits.token_budget,
            "budget_cents": key.budget_cents,
            "rpm": limits.rpm,
            "tpm": limits.tpm,
        },
        at=now,
    )
    return _view(key, owner), plain


def _check(limits: KeyLimits) -> None:
    if limits.token_budget is not None and limits.token_budget < 1:
        raise InvalidInput("must be at least 1 token", field="token_budget")
    budget = limits.budget_eur
    if budget is not None and (not budget.is_finite() or not 0 < budget <= MAX_BUDGET_EUR):
        raise InvalidInput(f"must be above € 0 and at most € {MAX_BUDGET_EUR}", field="budget_eur")
    if budget is not None and budget != budget.quantize(Decimal("0.01")):
        raise InvalidInput("must be whole cents", field="budget_eur")
    for name, value in (("rpm", limits.rpm), ("tpm", limits.tpm)):
        if value is not None and value < 1:
            raise InvalidInput("must be at least 1", field=name)


def list_keys(session: Session, principal: Principal, *, project: str) -> list[KeyView]:
    owner = project_by_name(session, principal, project, action=Action.ENDPOINT_READ)
    stmt = select(InferenceKey).where(InferenceKey.project_id == owner.id).order_by(InferenceKey.id)
    return [_view(k, owner) for k in session.scalars(stmt)]


def revoke_key(session: Session, principal: Principal, key_id: int, *, now: float) -> KeyView:
    key = session.get(InferenceKey, key_id)
    if key is None or not principal.sees(key.project_id):
        raise NotFound(f"no inference key {key_id}", field="key_id")
    principal.authorize(Action.INFERENCE_KEY_MANAGE, key.project_id)
    if key.revoked_at is not None:
        raise Conflict(f"inference key {key_id} is revoked already", field="key_id")
    key.revoked_at = now
    audit.record(
        session,
        actor=principal.name,
        action="inference_key.revoke",
        object=f"inference_key:{key_id}",
        source=principal.source,
        project_id=key.project_id,
        at=now,
    )
    owner = session.get(Project, key.project_id)
    assert owner is not None
    return _view(key, owner)


def _view(key: InferenceKey, owner: Project) -> KeyView:
    return KeyView(
        id=key.id,
        name=key.name,
        project=owner.name,
        prefix=key.prefix,
        models=list(key.models) if key.models else None,
        token_budget=key.token_budget,
        tokens_used=key.tokens_used,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        budget_cents=key.budget_cents,
        spent_cents=cents_of_nanocents(key.spent_nanocents),
        rpm=key.rpm,
        tpm=key.tpm,
    )
