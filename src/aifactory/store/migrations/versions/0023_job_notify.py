"""jobs.notify: its owner asked to be told of its end

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 21:10:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _maintenance_windows()
    # Jobs submitted before asked nothing: their owners' preferences alone decide.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("notify")


def _maintenance_windows() -> None:
    """The table of 0021, for a database that went past 0021 when it was still empty."""
    path = Path(__file__).with_name("0021_maintenance.py")
    spec = importlib.util.spec_from_file_location("aifactory_migration_0021", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.create_windows_table()
