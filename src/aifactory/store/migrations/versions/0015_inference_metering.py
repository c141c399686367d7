"""inference metering and scaling: token tariffs per programme, keys' € budgets and rate limits,
each request's price and payer, endpoints' replica range, concurrency and idle time

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prompt_token_tariff", sa.String(32), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("completion_token_tariff", sa.String(32), nullable=False, server_default="0")
        )
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_replicas", sa.Integer(), server_default="1"))
        batch_op.add_column(
            sa.Column("concurrency", sa.Integer(), nullable=False, server_default="4")
        )
        batch_op.add_column(
            sa.Column("idle_timeout_s", sa.Float(), nullable=False, server_default="900")
        )
        batch_op.add_column(
            sa.Column("time_limit_s", sa.Float(), nullable=False, server_default="86400")
        )
        batch_op.add_column(sa.Column("wanted_at", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("draining", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("trouble", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("environment", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column("engine", sa.String(16), nullable=False, server_default="recipe")
        )
        batch_op.add_column(sa.Column("dataset", sa.String(200), nullable=True))
        batch_op.add_column(
            sa.Column("engine_args", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.alter_column("source_job_id", existing_type=sa.Integer(), nullable=True)
    op.execute("UPDATE endpoints SET max_replicas = replicas")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.alter_column("max_replicas", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("inference_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_cents", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("spent_nanocents", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("rpm", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tpm", sa.Integer(), nullable=True))
    with op.batch_alter_table("inference_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allocation_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("cost_nanocents", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("subsidy_pct", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_inference_usage_allocation_id_allocations"),
            "allocations",
            ["allocation_id"],
            ["id"],
        )
    op.create_index("ix_inference_usage_endpoint_at", "inference_usage", ["endpoint_id", "at"])
    op.create_index("ix_inference_usage_at", "inference_usage", ["at"])


def downgrade() -> None:
    op.drop_index("ix_inference_usage_at", table_name="inference_usage")
    op.drop_index("ix_inference_usage_endpoint_at", table_name="inference_usage")
    with op.batch_alter_table("inference_usage", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_inference_usage_allocation_id_allocations"), type_="foreignkey"
        )
        for column in ("subsidy_pct", "cost_nanocents", "allocation_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("inference_keys", schema=None) as batch_op:
        for column in ("tpm", "rpm", "spent_nanocents", "budget_cents"):
            batch_op.drop_column(column)
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.alter_column("source_job_id", existing_type=sa.Integer(), nullable=False)
        for column in ("engine_args", "dataset", "engine"):
            batch_op.drop_column(column)
        added = ["environment", "trouble", "draining", "wanted_at", "time_limit_s"]
        for column in (*added, "idle_timeout_s", "concurrency", "max_replicas"):
            batch_op.drop_column(column)
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.drop_column("completion_token_tariff")
        batch_op.drop_column("prompt_token_tariff")
