"""usage records keep the memory an attempt held and what it measurably used (efficiency)

Records made before have none of it: NULL, read as "not measured", never as zero.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = ("cpu_time_s", "peak_rss_mb", "gpu_utilisation_pct", "peak_gpu_memory_mb")


def upgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("memory_mb", sa.Integer(), nullable=True))
        for name in FIGURES:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for name in reversed(FIGURES):
            batch_op.drop_column(name)
        batch_op.drop_column("memory_mb")
