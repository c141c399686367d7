"""The Alembic migrations against the models, on a real SQLite file and a real PostgreSQL
server: they build the schema the models describe, 0002 upgrades a database with jobs in it,
and 0008 turns metered seconds into milliseconds exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from aifactory.store.migrate import alembic_config
from aifactory.store.models import Base


def test_the_migrated_schema_is_the_one_the_models_describe(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_0002_keeps_every_job_and_asks_no_preemption_of_any(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "0001")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            for statement in _A_RUNNING_JOB_IN_0001:
                conn.execute(text(statement))
        command.upgrade(config, "head")
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT state, preempt_requested_at, preempt_reason FROM jobs")
            ).one()
        assert tuple(row) == ("RUNNING", None, None)
    finally:
        engine.dispose()


_A_RUNNING_JOB_IN_0001 = (
    "INSERT INTO organisations (id, name, kind, created_at) VALUES (1, 'o', 'university', 0)",
    "INSERT INTO projects (id, organisation_id, name, created_at) VALUES (1, 1, 'p', 0)",
    "INSERT INTO users (id, name, facility_role, created_at) VALUES (1, 'u', 'admin', 0)",
    """INSERT INTO jobs (id, project_id, user_id, name, command, env, gpus_per_node, nodes,
        cpus_per_node, memory_mb_per_node, time_limit_s, preemptible, priority, state,
        cancel_requested, attempts, submitted_at, updated_at)
    VALUES (1, 1, 1, 'j', '["true"]', '{}', 1, 1, 1, 1024, 60, true, 0, 'RUNNING', false, 1,
        0, 0)""",
)


def test_0008_keeps_every_second_as_1000_milliseconds_and_records_the_terms(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "0001")
    engine = create_engine(db_url)
    try:
        _run(engine, _A_RUNNING_JOB_IN_0001)
        command.upgrade(config, "0007")
        _insert(engine, _USAGE_IN_0007)

        command.upgrade(config, "head")

        assert _read(engine, "SELECT key, gpu_ms, cost_cents FROM ledger_entries") == [
            ("award:1", 360_000_000, 0),
            ("job:1:1:reserve", -7_200_000, 0),
            ("job:1:1:release", 7_200_000, 0),
            ("job:1:1:settle", -1_801_000, 155),
        ]
        usage = (
            "SELECT gpu_ms, cpu_ms, gpu_price, cpu_price, subsidy_pct, gpu_cents FROM usage_records"
        )
        assert _read(engine, usage) == [
            (1_801_000, 3_602_000, "3.10", "0.02", 50, 155),  # an H100: its own tariff
            (600_000, 0, "2.50", "0.02", 50, 42),  # any other model: the "*" tariff
            (400_000, 400_000, "0", "0", 0, 0),  # metered only: nobody paid
        ]
    finally:
        engine.dispose()


def test_0008_downgrades_to_whole_seconds_half_away_from_zero(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        config = alembic_config(db_url)
        command.downgrade(config, "0001")
        _run(engine, _A_RUNNING_JOB_IN_0001)
        command.upgrade(config, "0007")
        _insert(engine, _USAGE_IN_0007)
        command.upgrade(config, "head")
        _run(
            engine,
            (
                "UPDATE ledger_entries SET gpu_ms = -1801500 WHERE key = 'job:1:1:settle'",
                "UPDATE usage_records SET gpu_ms = 1801500, cpu_ms = 499 WHERE attempt = 1",
            ),
        )

        command.downgrade(config, "0007")

        settle = "SELECT gpu_s FROM ledger_entries WHERE key = 'job:1:1:settle'"
        assert _read(engine, settle) == [(-1802,)]
        assert _read(engine, "SELECT gpu_s, cpu_s FROM usage_records WHERE attempt = 1") == [
            (1802, 0)
        ]
    finally:
        engine.dispose()


def _run(engine: Engine, statements: Sequence[str]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _insert(engine: Engine, inserts: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
    with engine.begin() as conn:
        for statement, rows in inserts:
            conn.execute(text(statement), rows)


def _read(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(f"{query} ORDER BY id"))]


_USAGE_IN_0007: tuple[tuple[str, list[dict[str, Any]]], ...] = (
    (
        """INSERT INTO programmes (id, name, title, eligible_kinds, gpu_tariffs, cpu_tariff,
            subsidy_pct, priority_weight, preemptible_default, max_gpus_per_job,
            capacity_share, starter_gpu_hours, starter_days, created_at)
        VALUES (1, 'pilot', 'Pilot', '["university"]', '{"h100": "3.10", "*": "2.50"}',
            '0.02', 50, 10, false, NULL, 0.0, 0.0, 30, 0)""",
        [{}],
    ),
    (
        """INSERT INTO allocations (id, name, project_id, programme_id, proposal_id,
            award_gpu_s, gpu_model, quota_gpus, valid_from, valid_to, created_by, created_at)
        VALUES (1, 'p-pilot', 1, 1, NULL, 360000, NULL, 0, 0, 4000000000, 'admin', 0)""",
        [{}],
    ),
    (
        """INSERT INTO ledger_entries (id, key, allocation_id, job_id, attempt, kind, gpu_s,
            cost_cents, subsidy_cents, at, actor, reason)
        VALUES (:id, :key, 1, :job, :attempt, :kind, :gpu_s, :cost, 0, 0, 'c', 'r')""",
        [
            {"id": 1, "key": "award:1", "job": None, "attempt": None, "kind": "award"}
            | {"gpu_s": 360_000, "cost": 0},
            *(
                {"id": n, "key": f"job:1:1:{kind}", "job": 1, "attempt": 1, "kind": kind}
                | {"gpu_s": gpu_s, "cost": cost}
                for n, kind, gpu_s, cost in (
                    (2, "reserve", -7200, 0),
                    (3, "release", 7200, 0),
                    (4, "settle", -1801, 155),
                )
            ),
        ],
    ),
    (
        """INSERT INTO usage_records (id, job_id, attempt, project_id, allocation_id,
            gpu_model, gpus, cpus, started_at, ended_at, gpu_s, cpu_s, energy_j,
            energy_measured, gpu_cents, cpu_cents, subsidy_cents, booked_at)
        VALUES (:id, 1, :id, 1, :paid, :model, 1, 2, 0, 1, :gpu_s, :cpu_s, 0, false, :cents,
            0, 0, 1)""",
        [
            {"id": 1, "paid": 1, "model": "h100", "gpu_s": 1801, "cpu_s": 3602, "cents": 155},
            {"id": 2, "paid": 1, "model": "a100", "gpu_s": 600, "cpu_s": 0, "cents": 42},
            {"id": 3, "paid": None, "model": "h100", "gpu_s": 400, "cpu_s": 400, "cents": 0},
        ],
    ),
)
