"""The one schema, as SQLAlchemy Core tables (migrations in ``migrations/`` must match it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()


def _partial(predicate: str) -> dict[str, Any]:
    """A partial index's predicate, the same on both backends."""
    return {"sqlite_where": text(predicate), "postgresql_where": text(predicate)}


files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("filename", Text, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("blob_key", String(128), nullable=False),
    Index("ix_files_tenant_created", "tenant", "created_at"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False, server_default=""),
    Column("dialect", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(64), nullable=True),
    Column("completion_window", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("in_progress_at", BigInteger, nullable=True),
    Column("finalizing_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("expired_at", BigInteger, nullable=True),
    Column("cancelling_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("output_file_id", String(64), nullable=True),
    Column("error_file_id", String(64), nullable=True),
    Column("errors", Text, nullable=True),
    Column("metadata", Text, nullable=True),
    Column("model", Text, nullable=True),
    Column("output_expires_after", Integer, nullable=True),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("completed", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    # Of ``failed``: rows never sent because the batch was cancelled / expired.
    Column("canceled", Integer, nullable=False, server_default="0"),
    Column("expired", Integer, nullable=False, server_default="0"),
    Column("input_tokens", BigInteger, nullable=False, server_default="0"),
    Column("output_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cached_tokens", BigInteger, nullable=False, server_default="0"),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default="0"),
    # Sum of the rows' costs in ticks (1e-9 USD); ``unpriced``: rows with tokens but no price.
    Column("cost_ticks", BigInteger, nullable=False, server_default="0"),
    Column("unpriced", Integer, nullable=False, server_default="0"),
    # The batch's own budget in ticks (NULL: none); see ``storage/budgets.py``.
    Column("budget_ticks", BigInteger, nullable=True),
    # The upstreams its rows were routed to, comma-separated (set at validation): which
    # upstreams' health its batch object shows.
    Column("upstreams", Text, nullable=True),
    # The batch a server-side retry made of this one's failed lines (``service/retry.py``).
    Column("retried_by", String(64), nullable=True),
    # A claim lets one worker at a time validate or finalize a batch; it expires with the worker.
    Column("claim_token", String(64), nullable=True),
    Column("claim_expires_at", Float, nullable=True),
    Index("ix_batches_tenant_id", "tenant", "id"),
    Index("ix_batches_status", "status"),
)

requests = Table(
    "requests",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("custom_id", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("upstream", String(64), nullable=True),
    Column("model", Text, nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("est_tokens", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False, server_default="0"),
    Column("lease_token", String(64), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("finished_at", Float, nullable=True),
    # Ticks per input/output token, snapshot at ingest (NULL: no price); the cost once recorded.
    Column("price_in", Float, nullable=True),
    Column("price_out", Float, nullable=True),
    Column("cost_ticks", BigInteger, nullable=True),
    # The most this row may cost (its input estimate and output cap at its prices), held
    # against budgets while it is leased; NULL for an unpriced row.
    Column("reserve_ticks", BigInteger, nullable=True),
    Index(
        "ix_requests_queued",
        "batch_id",
        "upstream",
        "line",
        **_partial("state = 'queued'"),
    ),
    Index(
        "ix_requests_leased",
        "lease_expires_at",
        **_partial("state = 'leased'"),
    ),
    Index("ix_requests_custom_id", "batch_id", "custom_id"),
    # What a batch's leased rows hold against its budget; unpriced rows stay out of it.
    Index(
        "ix_requests_reserved",
        "batch_id",
        "reserve_ticks",
        **_partial("state = 'leased' AND reserve_ticks IS NOT NULL"),
    ),
    # Usage over a time range; rows still open (no finished_at) stay out of it.
    Index(
        "ix_requests_finished_at",
        "finished_at",
        **_partial("finished_at IS NOT NULL"),
    ),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    # SHA-256 (hex) of the secret: the secret itself is never stored.
    Column("key_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),  # the secret's first characters, for display
    Column("admin", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ux_api_keys_hash", "key_hash", unique=True),
    Index(
        "ux_api_keys_live_name",
        "name",
        unique=True,
        **_partial("revoked_at IS NULL"),
    ),
)

budgets = Table(
    "budgets",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("budget_ticks", BigInteger, nullable=False),
    Column("period", String(16), nullable=False),  # day | month | total
    Column("updated_at", BigInteger, nullable=False),
)

# What each tenant spent per UTC day (Unix day number), moved in the same transaction as the
# rows' costs: a tenant's spend over a budget period is a sum over at most a month of rows.
tenant_spend = Table(
    "tenant_spend",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("cost_ticks", BigInteger, nullable=False),
)

# Each worker's open circuits (``storage/health.py``): which upstreams are down, and since when.
upstream_health = Table(
    "upstream_health",
    metadata,
    Column("upstream", String(64), primary_key=True),
    Column("owner", String(64), primary_key=True),
    Column("since", Float, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
