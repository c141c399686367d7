"""job arrays: each task's array (its first task's id), index and running limit

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("array_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("array_index", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("array_throttle", sa.Integer(), nullable=True))
        batch_op.create_index("ix_jobs_array_id", ["array_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_array_id")
        batch_op.drop_column("array_throttle")
        batch_op.drop_column("array_index")
        batch_op.drop_column("array_id")
