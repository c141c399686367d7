"""the last round's verdict on every waiting job, kept for queue and job reads

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_verdicts",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("estimated_start", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_verdicts_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_verdicts")),
    )
    op.create_index("ix_job_verdicts_line", "job_verdicts", ["held", "position", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_job_verdicts_line", table_name="job_verdicts")
    op.drop_table("job_verdicts")
