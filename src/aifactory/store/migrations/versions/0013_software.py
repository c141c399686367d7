"""software: environment builds by content key and their names, imported images, each job's own

A job keeps its environment's build key and its image's digest as settled at submission.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "environment_builds",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("python", sa.String(length=16), nullable=False),
        sa.Column("requirements", sa.JSON(), nullable=False),
        sa.Column("index_url", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("builder", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("python_version", sa.String(length=32), nullable=True),
        sa.Column("packages", sa.JSON(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_environment_builds")),
    )
    op.create_index("ix_environment_builds_state", "environment_builds", ["state"])
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("build_key", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_key"],
            ["environment_builds.key"],
            name=op.f("fk_environments_build_key_environment_builds"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_environments_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environments")),
    )
    op.create_index("ix_environments_project_name", "environments", ["project_id", "name"])
    op.create_index("ix_environments_build_key", "environments", ["build_key"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_images_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_index("ix_images_project_name", "images", ["project_id", "name"])
    op.create_index("ix_images_digest", "images", ["digest"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("environment_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("image", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("image_digest", sa.String(length=80), nullable=True))
        batch_op.create_index("ix_jobs_environment_key", ["environment_key"], unique=False)
        batch_op.create_index("ix_jobs_image_digest", ["image_digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_image_digest")
        batch_op.drop_index("ix_jobs_environment_key")
        batch_op.drop_column("image_digest")
        batch_op.drop_column("image")
        batch_op.drop_column("environment_key")
        batch_op.drop_column("environment")
    op.drop_table("images")
    op.drop_table("environments")
    op.drop_table("environment_builds")
