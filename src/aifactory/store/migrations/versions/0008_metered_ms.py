"""metered time in milliseconds, and the terms each usage record settled under

Usage records and ledger entries kept whole GPU- and CPU-seconds, rounded per record, so a
sub-second attempt was charged nothing. From here they keep milliseconds (domain.money), and
a usage record keeps the terms it settled under (€ per GPU-hour and per CPU-hour, subsidy %),
so an invoice line can price the exact sum of its records and round once.

Existing rows convert exactly: every second becomes 1000 milliseconds, so every balance and
every record's time is what it was; a record's cents are kept as they were. The terms of a
record settled before this revision are its paying programme's as they stand now — prices
have no history to read them from, and the record's cents were rounded from whole seconds, so
no exact price follows from them; a record no allocation paid has zero prices, as it had zero
cents. Downgrading rounds milliseconds to whole seconds (half away from zero): that loses the
sub-second parts this revision keeps.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14 10:00:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MS_PER_S = 1000
LEDGER_INDEX = "ix_ledger_entries_allocation_kind"
ANY_MODEL = "*"  # domain.programmes: the tariff key for a model without its own price

_ledger = sa.table("ledger_entries", sa.column("gpu_ms", sa.BigInteger()))
_usage = sa.table(
    "usage_records",
    sa.column("id", sa.Integer()),
    sa.column("gpu_ms", sa.BigInteger()),
    sa.column("cpu_ms", sa.BigInteger()),
    sa.column("allocation_id", sa.Integer()),
    sa.column("gpu_model", sa.String()),
    sa.column("gpu_price", sa.String()),
    sa.column("cpu_price", sa.String()),
    sa.column("subsidy_pct", sa.Integer()),
)
_allocations = sa.table(
    "allocations", sa.column("id", sa.Integer()), sa.column("programme_id", sa.Integer())
)
_programmes = sa.table(
    "programmes",
    sa.column("id", sa.Integer()),
    sa.column("gpu_tariffs", sa.JSON()),
    sa.column("cpu_tariff", sa.String()),
    sa.column("subsidy_pct", sa.Integer()),
)


def upgrade() -> None:
    op.drop_index(LEDGER_INDEX, table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.alter_column(
            "gpu_s", new_column_name="gpu_ms", existing_type=sa.BigInteger(), nullable=False
        )
    op.execute(_ledger.update().values(gpu_ms=_ledger.c.gpu_ms * MS_PER_S))
    op.create_index(LEDGER_INDEX, "ledger_entries", ["allocation_id", "kind", "gpu_ms"])

    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for name in ("gpu", "cpu"):
            batch_op.alter_column(
                f"{name}_s",
                new_column_name=f"{name}_ms",
                existing_type=sa.BigInteger(),
                existing_nullable=False,
            )
        batch_op.add_column(sa.Column("gpu_price", sa.String(32), server_default="0"))
        batch_op.add_column(sa.Column("cpu_price", sa.String(32), server_default="0"))
        batch_op.add_column(sa.Column("subsidy_pct", sa.Integer(), server_default="0"))
    op.execute(
        _usage.update().values(gpu_ms=_usage.c.gpu_ms * MS_PER_S, cpu_ms=_usage.c.cpu_ms * MS_PER_S)
    )
    _record_terms()
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for column, kind in (
            ("gpu_price", sa.String(32)),
            ("cpu_price", sa.String(32)),
            ("subsidy_pct", sa.Integer()),
        ):
            batch_op.alter_column(column, existing_type=kind, nullable=False, server_default=None)


def _record_terms() -> None:
    """Each paid record's terms: its programme's tariff for its GPU model (or `*`), its CPU
    tariff and its subsidy, as stored (the tariffs are exact text already)."""
    conn = op.get_bind()
    update = (
        _usage.update()
        .where(_usage.c.id == sa.bindparam("record"))
        .values(
            gpu_price=sa.bindparam("gpu"),
            cpu_price=sa.bindparam("cpu"),
            subsidy_pct=sa.bindparam("pct"),
        )
    )
    terms = list(_terms(conn))
    if terms:
        conn.execute(update, terms)


def _terms(conn: sa.Connection) -> Iterator[dict[str, Any]]:
    paid = (
        sa.select(
            _usage.c.id,
            _usage.c.gpu_model,
            _programmes.c.gpu_tariffs,
            _programmes.c.cpu_tariff,
            _programmes.c.subsidy_pct,
        )
        .join(_allocations, _allocations.c.id == _usage.c.allocation_id)
        .join(_programmes, _programmes.c.id == _allocations.c.programme_id)
    )
    for record, model, tariffs, cpu_tariff, pct in conn.execute(paid):
        gpu = tariffs[model] if model in tariffs else tariffs.get(ANY_MODEL, "0")
        yield {"record": record, "gpu": str(gpu), "cpu": str(cpu_tariff), "pct": int(pct)}


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_column("subsidy_pct")
        batch_op.drop_column("cpu_price")
        batch_op.drop_column("gpu_price")
    op.execute(
        _usage.update().values(gpu_ms=_seconds(_usage.c.gpu_ms), cpu_ms=_seconds(_usage.c.cpu_ms))
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for name in ("gpu", "cpu"):
            batch_op.alter_column(
                f"{name}_ms",
                new_column_name=f"{name}_s",
                existing_type=sa.BigInteger(),
                existing_nullable=False,
            )
    op.drop_index(LEDGER_INDEX, table_name="ledger_entries")
    op.execute(_ledger.update().values(gpu_ms=_seconds(_ledger.c.gpu_ms)))
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.alter_column(
            "gpu_ms", new_column_name="gpu_s", existing_type=sa.BigInteger(), nullable=False
        )
    op.create_index(LEDGER_INDEX, "ledger_entries", ["allocation_id", "kind", "gpu_s"])


def _seconds(ms: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """Milliseconds to whole seconds, half away from zero, in integers: SQLite and PostgreSQL
    both divide integers toward zero, and round floats differently."""
    half = MS_PER_S // 2
    return sa.case((ms >= 0, (ms + half) // MS_PER_S), else_=-((half - ms) // MS_PER_S))
