"""The Alembic migrations against the models, on a real SQLite file and a real PostgreSQL
server: they build the schema the models describe, and 0002 upgrades a database with jobs in
it."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

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
