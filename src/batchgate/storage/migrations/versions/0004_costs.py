"""Cost per request: row prices snapshot at ingest, row cost, batch cost and unpriced count.

Each row's prices (ticks per token) are set when it is routed; its cost is recorded with its
tokens; the batch sums the costs and counts the rows used without a price.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch_op:
        batch_op.add_column(sa.Column("price_in", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("price_out", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cost_ticks", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(
            sa.Column("cost_ticks", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("unpriced", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("unpriced")
        batch_op.drop_column("cost_ticks")
    with op.batch_alter_table("requests") as batch_op:
        batch_op.drop_column("cost_ticks")
        batch_op.drop_column("price_out")
        batch_op.drop_column("price_in")
