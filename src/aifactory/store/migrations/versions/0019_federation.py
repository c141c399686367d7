"""federation: awards imported from an upstream portal

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federation_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_imports")),
    )
    op.create_index(op.f("ix_federation_imports_at"), "federation_imports", ["at"])
    op.create_table(
        "federation_awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.String(128), nullable=False),
        sa.Column("upstream_project_id", sa.String(128), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("pi_user_id", sa.Integer(), nullable=False),
        sa.Column("gpu_s", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Float(), nullable=False),
        sa.Column("valid_to", sa.Float(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["allocations.id"],
            name=op.f("fk_federation_awards_allocation_id_allocations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_federation_awards_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["pi_user_id"], ["users.id"], name=op.f("fk_federation_awards_pi_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["federation_imports.id"],
            name=op.f("fk_federation_awards_import_id_federation_imports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_awards")),
        sa.UniqueConstraint("award_id", name=op.f("uq_federation_awards_award_id")),
        sa.UniqueConstraint("allocation_id", name=op.f("uq_federation_awards_allocation_id")),
    )
    op.create_index(
        op.f("ix_federation_awards_upstream_project_id"),
        "federation_awards",
        ["upstream_project_id"],
    )
    op.create_index(op.f("ix_federation_awards_project_id"), "federation_awards", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_federation_awards_project_id"), table_name="federation_awards")
    op.drop_index(op.f("ix_federation_awards_upstream_project_id"), table_name="federation_awards")
    op.drop_table("federation_awards")
    op.drop_index(op.f("ix_federation_imports_at"), table_name="federation_imports")
    op.drop_table("federation_imports")
