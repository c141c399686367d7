"""Tokens through the gateway, priced and billed (issue 19): each request priced when it is
asked at the paying programme's token tariffs, exactly; keys' € budgets; `usage` and invoices
show tokens and €, rounded once; each hour's tokens go into the allocation's ledger once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.accounting.tokens import HOUR_S, SETTLE_AFTER_S, book_tokens
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import token_nanocents
from aifactory.domain.tenancy import OrgKind
from aifactory.errors import InvalidInput
from aifactory.services import gateway
from aifactory.services.auth import principal_of
from aifactory.services.gateway import Refusal
from aifactory.services.inference_keys import KeyLimits, create_key, list_keys
from aifactory.services.invoices import issue_invoice
from aifactory.services.principal import Principal
from aifactory.services.tenancy import create_organisation, create_project, user_by_name
from aifactory.services.usage import usage
from aifactory.store.db import Database
from aifactory.store.models import Endpoint, InferenceUsage, LedgerEntry, Programme
from tests.conftest import seed_facility
from tests.services.money_rows import a_programme, an_allocation

JAN = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FEB = 1_769_904_000.0
PROMPT, COMPLETION = Decimal("0.20"), Decimal("0.60")  # € per million tokens
JOBS = Path("/nonexistent/jobs")  # no replica runs here: routes are read, engines never asked


@pytest.fixture
def world(db: Database) -> Database:
    """Project `lab` paying from `pilot` (50 % subsidy) with token tariffs, serving `dutch`."""
    seed_facility(db, now=JAN - 86400)
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        create_organisation(s, admin, name="uva", kind=OrgKind.UNIVERSITY, now=JAN)
        lab = create_project(s, admin, name="lab", organisation="uva", owner="admin", now=JAN)
        pilot = a_programme(s)
        pilot.prompt_token_tariff, pilot.completion_token_tariff = str(PROMPT), str(COMPLETION)
        an_allocation(s, "lab-pilot", project_id=lab.id, programme_id=pilot.id)
        s.add(
            Endpoint(
                project_id=lab.id,
                name="dutch",
                source_job_id=1,
                min_replicas=0,
                max_replicas=1,
                cpus=1,
                memory_mb=1024,
                gpus=0,
                draining={},
                created_by="admin",
                created_at=JAN,
            )
        )
    return db


def _key(db: Database, name: str, limits: KeyLimits = KeyLimits()) -> str:
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        _, plain = create_key(
            s, admin, name=name, project="lab", models=None, ttl_days=None, now=JAN, limits=limits
        )
    return plain


def _ask(db: Database, key: str, prompt: int, completion: int, at: float) -> None:
    """One request as the gateway makes it: authorized (priced), answered, recorded."""
    with db.session() as s:
        route = gateway.authorize(s, key, "dutch", jobs_dir=JOBS, now=at)
        gateway.record(s, [gateway.Used(route, prompt, completion, 200, 5, at)])


def _admin(s: Session) -> Principal:
    return principal_of(s, user_by_name(s, "admin"))


def test_each_request_is_priced_exactly_when_it_is_asked(world: Database) -> None:
    key = _key(world, "app")
    _ask(world, key, 1234, 56, JAN + 10)
    with world.read() as s:
        (row,) = s.scalars(select(InferenceUsage)).all()
        assert row.allocation_id is not None
        assert row.subsidy_pct == 50
        assert row.cost_nanocents == token_nanocents(1234, PROMPT) + token_nanocents(56, COMPLETION)
        assert row.cost_nanocents == 1234 * 20_000 + 56 * 60_000  # 0.20 € per M = 20 000 n¢/token
    with world.session() as s:  # the tariff changes: the request keeps its price
        pilot = s.scalars(select(Programme).where(Programme.name == "pilot")).one()
        pilot.prompt_token_tariff = "9.00"
    _ask(world, key, 1, 0, JAN + 20)
    with world.read() as s:
        prices = [r.cost_nanocents for r in s.scalars(select(InferenceUsage).order_by("id"))]
    assert prices[1] == 900_000


def test_usage_shows_tokens_and_euros_rounded_once(world: Database) -> None:
    key = _key(world, "app")
    for i in range(3):  # 3 × (10 000 + 2 000) tokens: € 0.002 + € 0.0012 each
        _ask(world, key, 10_000, 2_000, JAN + 60 * i)
    with world.read() as s:
        found = usage(s, _admin(s), project="lab", start=JAN, end=FEB, grid_g_per_kwh=300)
        (row,) = found.tokens
        assert (row.model, row.key, row.requests) == ("dutch", "app", 3)
        assert (row.prompt_tokens, row.completion_tokens) == (30_000, 6_000)
        # € 0.0096 exactly: 1 cent once rounded (three rounded requests would make 0 cents)
        assert (row.cost_cents, row.subsidy_cents, row.net_cents) == (1, 0, 1)
        assert found.token_totals == row.__class__("", "", "", 3, 30_000, 6_000, 1, 0, 960_000_000)
        (listed,) = list_keys(s, _admin(s), project="lab")
        assert (listed.tokens_used, listed.spent_cents) == (36_000, 1)


def test_a_key_with_a_euro_budget_is_stopped_at_it(world: Database) -> None:
    key = _key(world, "capped", KeyLimits(budget_eur=Decimal("0.01")))
    _ask(world, key, 40_000, 0, JAN)  # € 0.008
    _ask(world, key, 10_000, 0, JAN + 1)  # € 0.010: the budget is spent now
    with world.read() as s, pytest.raises(Refusal) as spent:
        gateway.authorize(s, key, "dutch", jobs_dir=JOBS, now=JAN + 2)
    assert (spent.value.status, spent.value.code) == (429, "insufficient_quota")
    assert "€ 0.01" in str(spent.value)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (KeyLimits(budget_eur=Decimal("0.001")), "budget_eur"),
        (KeyLimits(budget_eur=Decimal(0)), "budget_eur"),
        (KeyLimits(rpm=0), "rpm"),
        (KeyLimits(tpm=-1), "tpm"),
        (KeyLimits(token_budget=0), "token_budget"),
    ],
)
def test_bad_key_limits_are_refused_naming_the_field(
    world: Database, limits: KeyLimits, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        _key(world, "bad", limits)
    assert refused.value.field == field


def test_each_hours_tokens_go_into_the_ledger_once(world: Database) -> None:
    key, other = _key(world, "app"), _key(world, "batch")
    _ask(world, key, 10_000, 0, JAN + 100)
    _ask(world, key, 20_000, 5_000, JAN + 200)
    _ask(world, other, 1_000, 1_000, JAN + 300)
    _ask(world, key, 7, 7, JAN + HOUR_S + 5)  # the next hour
    with world.session() as s:
        assert book_tokens(s, now=JAN + HOUR_S) == 0  # the hour has not settled yet
        assert book_tokens(s, now=JAN + HOUR_S + SETTLE_AFTER_S) == 2  # one entry per key
        assert book_tokens(s, now=JAN + HOUR_S + SETTLE_AFTER_S + 30) == 0  # and only once
    with world.read() as s:
        entries = s.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == EntryKind.TOKENS.value).order_by("id")
        ).all()
    assert [(e.gpu_ms, e.at) for e in entries] == [(0, JAN + HOUR_S)] * 2
    # app: 30 000 prompt (€ 0.006) + 5 000 completion (€ 0.003) = € 0.009 → 1 cent, ½ subsidy
    assert [(e.cost_cents, e.subsidy_cents) for e in entries] == [(1, 0), (0, 0)]
    assert "2 requests, 30000 prompt + 5000 completion tokens" in entries[0].reason
    with world.session() as s:
        assert book_tokens(s, now=JAN + 2 * HOUR_S + SETTLE_AFTER_S) == 1  # the second hour


def test_the_invoice_bills_tokens_per_model_at_their_exact_price(world: Database) -> None:
    key = _key(world, "app")
    for i in range(40):  # 40 × (100 000 + 50 000): € 0.02 + € 0.03 each → € 2.00
        _ask(world, key, 100_000, 50_000, JAN + 3600 * i)
    with world.session() as s:
        issued = issue_invoice(
            s, _admin(s), project="lab", month="2026-01", now=FEB + 1, vat_pct=21
        )
    lines = issued.invoice.lines
    assert lines == [
        {
            "description": "Tokens dutch, pilot programme",
            "quantity": "6.000000",
            "unit": "M tokens",
            "unit_price": "0.33",
            "amount_cents": 200,
        },
        {
            "description": "Subsidy pilot programme (50 %)",
            "quantity": "",
            "unit": "",
            "unit_price": "",
            "amount_cents": -100,
        },
    ]
    assert (issued.invoice.net_cents, issued.invoice.vat_cents) == (100, 21)
