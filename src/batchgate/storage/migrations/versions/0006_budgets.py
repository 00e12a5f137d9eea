"""Budgets: a batch's own budget, each row's reservation, tenant budgets and spend per day.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_RESERVED = "state = 'leased' AND reserve_ticks IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(sa.Column("budget_ticks", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("requests") as batch_op:
        batch_op.add_column(sa.Column("reserve_ticks", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_requests_reserved", "requests", ["batch_id", "reserve_ticks"],
        sqlite_where=sa.text(_RESERVED), postgresql_where=sa.text(_RESERVED),
    )  # fmt: skip
    op.create_table(
        "budgets",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("budget_ticks", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "tenant_spend",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cost_ticks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "day"),
    )
    # The spend recorded before this revision, so a tenant budget counts it too.
    day = "CAST(r.finished_at / 86400 AS INTEGER)"
    if _postgres():  # whose CAST rounds
        day = "FLOOR(r.finished_at / 86400)"
    op.execute(
        "INSERT INTO tenant_spend (tenant, day, cost_ticks) "
        f"SELECT b.tenant, {day}, SUM(r.cost_ticks) FROM requests r "
        "JOIN batches b ON b.id = r.batch_id "
        "WHERE r.cost_ticks IS NOT NULL AND r.finished_at IS NOT NULL "
        f"GROUP BY b.tenant, {day}"
    )


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def downgrade() -> None:
    op.drop_table("tenant_spend")
    op.drop_table("budgets")
    op.drop_index("ix_requests_reserved", table_name="requests")
    with op.batch_alter_table("requests") as batch_op:
        batch_op.drop_column("reserve_ticks")
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("budget_ticks")
