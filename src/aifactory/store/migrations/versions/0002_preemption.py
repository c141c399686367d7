"""preemption: the intent to preempt an active job

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 10:12:44.102318
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preempt_requested_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("preempt_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("preempt_reason")
        batch_op.drop_column("preempt_requested_at")
