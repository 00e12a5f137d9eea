"""API keys: hashed secrets, each naming its tenant; names unique among live keys.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_api_keys_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index(
        "ux_api_keys_live_name", "api_keys", ["name"], unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ux_api_keys_live_name", table_name="api_keys")
    op.drop_index("ux_api_keys_hash", table_name="api_keys")
    op.drop_table("api_keys")
