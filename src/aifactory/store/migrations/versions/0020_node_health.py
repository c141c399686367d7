"""nodes: drained with a reason, by whom, and their health checks

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = ("drain_reason", "drained_by", "drained_at", "health_problem", "health_checked_at")


def upgrade() -> None:
    # Every node stays as it was: not drained, its health not checked yet.
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drain_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("drained_by", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("drained_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("health_problem", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("health_checked_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
