"""Migration 0010 (what an attempt measurably used, for efficiency reports) on a database with
usage records in it, on SQLite and PostgreSQL: the records made before keep every figure and
read as "not measured" (NULL, never zero); downgrading drops the new columns and nothing else."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from aifactory.store.migrate import alembic_config
from tests.store.test_migrations import _A_RUNNING_JOB_IN_0001, _USAGE_IN_0007, _insert, _read, _run

NEW = ["memory_mb", "cpu_time_s", "peak_rss_mb", "gpu_utilisation_pct", "peak_gpu_memory_mb"]
FIGURES = (
    "SELECT gpu_ms, memory_mb, cpu_time_s, peak_rss_mb, gpu_utilisation_pct, peak_gpu_memory_mb "
    "FROM usage_records"
)


def test_records_made_before_0010_are_kept_and_read_as_not_measured(db_url: str) -> None:
    config = alembic_config(db_url)
    engine = create_engine(db_url)
    try:
        command.downgrade(config, "0001")
        _run(engine, _A_RUNNING_JOB_IN_0001)
        command.upgrade(config, "0007")
        _insert(engine, _USAGE_IN_0007)
        command.upgrade(config, "head")

        assert _read(engine, FIGURES) == [
            (1_801_000, None, None, None, None, None),
            (600_000, None, None, None, None, None),
            (400_000, None, None, None, None, None),
        ]

        command.downgrade(config, "0009")
        columns = {c["name"] for c in inspect(engine).get_columns("usage_records")}
        assert not columns & set(NEW)
        assert len(_read(engine, "SELECT gpu_ms FROM usage_records")) == 3
        command.upgrade(config, "head")
    finally:
        engine.dispose()
