"""interactive sessions: a job's notebook server, its idle clock, and the passes into it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interactive_sessions",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("idle_timeout_s", sa.Float(), nullable=False),
        sa.Column("notebook_token", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=True),
        sa.Column("last_activity_at", sa.Float(), nullable=True),
        sa.Column("connections", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("busy_kernels", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("culled_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_interactive_sessions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_interactive_sessions_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_interactive_sessions")),
    )
    op.create_index(
        op.f("ix_interactive_sessions_project_id"), "interactive_sessions", ["project_id"]
    )
    op.create_table(
        "session_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("web_session_id", sa.Integer(), nullable=True),
        sa.Column("api_token_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_session_passes_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_passes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_passes")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_session_passes_token_hash")),
    )
    op.create_index(op.f("ix_session_passes_job_id"), "session_passes", ["job_id"])
    op.create_index(op.f("ix_session_passes_expires_at"), "session_passes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("session_passes")
    op.drop_table("interactive_sessions")
