"""Upstream health: each worker's open circuits, and which upstreams a batch's rows go to.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(sa.Column("upstreams", sa.Text(), nullable=True))
    op.create_table(
        "upstream_health",
        sa.Column("upstream", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("upstream", "owner"),
    )


def downgrade() -> None:
    op.drop_table("upstream_health")
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("upstreams")
