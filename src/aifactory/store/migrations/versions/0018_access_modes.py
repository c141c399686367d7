"""access modes: calls' modes, service levels, durations and tracks

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every call made before is a plain reviewed call, paid for nationally, with no ceiling,
    # durations or cut-offs: it behaves as it did.
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("access_mode", sa.String(16), nullable=False, server_default="reviewed")
        )
        batch_op.add_column(sa.Column("ceiling_gpu_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("min_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cutoff_days", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("funding", sa.String(16), nullable=False, server_default="national")
        )
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("track", sa.String(16), nullable=True))
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("requested_days")
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.drop_column("track")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        for column in (
            "funding",
            "cutoff_days",
            "max_days",
            "min_days",
            "ceiling_gpu_hours",
            "access_mode",
        ):
            batch_op.drop_column(column)
