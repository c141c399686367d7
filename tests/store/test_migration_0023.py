"""Migration 0021 first shipped empty (a reserved number); 0023 makes its table for a database
that went past 0021 then, and leaves one that has it alone (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from aifactory.store.migrate import alembic_config


def test_a_database_past_the_empty_0021_gets_the_windows_table(db_url: str) -> None:
    config = alembic_config(db_url)
    engine = create_engine(db_url)
    try:
        command.downgrade(config, "0022")
        with engine.begin() as conn:  # as the empty 0021 left it
            conn.execute(text("DROP TABLE maintenance_windows"))
        assert not inspect(engine).has_table("maintenance_windows")

        command.upgrade(config, "head")
        assert inspect(engine).has_table("maintenance_windows")
        assert "notify" in {c["name"] for c in inspect(engine).get_columns("jobs")}

        command.downgrade(config, "0022")  # the table is 0021's: it stays
        assert inspect(engine).has_table("maintenance_windows")
        assert "notify" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
        command.upgrade(config, "head")
    finally:
        engine.dispose()
