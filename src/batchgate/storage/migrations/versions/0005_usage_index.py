"""Usage per tenant over a time range: an index on when each request finished.

Partial (``finished_at IS NOT NULL``), so ingesting queued rows does not touch it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_requests_finished_at", "requests", ["finished_at"],
        sqlite_where=sa.text("finished_at IS NOT NULL"),
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_requests_finished_at", table_name="requests")
