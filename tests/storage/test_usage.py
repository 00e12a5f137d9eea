"""Usage per tenant over a time range (SQLite and PostgreSQL via ``db_url``): one aggregate of
the rows finished in ``[start, end)``, grouped by tenant and optionally model."""

from __future__ import annotations

import time

from batchgate import ids
from batchgate.domain.records import Batch, UsageGroup
from batchgate.storage.sql import SqlStore
from batchgate.storage.types import IngestRow, RowResult

PRICE = (75.0, 300.0)  # ticks per input / output token


def _batch(store: SqlStore, tenant: str) -> str:
    bid = ids.batch_id()
    now = int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": tenant, "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
        "created_at": now, "expires_at": now + 86400,
    }))  # fmt: skip
    return bid


def finish_rows(store: SqlStore, tenant: str, at: float, *rows: tuple[str, str, int, int]) -> str:
    """A batch of ``tenant`` whose rows (model, final state, input, output tokens) finish at
    ``at``; model "free" has no price."""
    bid = _batch(store, tenant)
    store.insert_rows(bid, [
        IngestRow(i, f"c{i}", "queued", "up", m, b"{}", 0, ticks=None if m == "free" else PRICE)
        for i, (m, *_) in enumerate(rows, 1)
    ], at)  # fmt: skip
    leased = store.lease([bid], "up", len(rows), owner="w", token="t", now=at, ttl=30)
    store.record([
        RowResult(bid, r.line, "t", state, status_code=200, response=b"{}",
                  input_tokens=inp, output_tokens=out)
        for r, (_, state, inp, out) in zip(leased, rows, strict=True)
    ], at)  # fmt: skip
    return bid


def test_usage_sums_per_tenant_and_model_over_the_range(store: SqlStore) -> None:
    t0 = 1_800_000_000.0
    finish_rows(store, "team-a", t0 + 10, ("m", "succeeded", 100, 10), ("m", "failed", 0, 0))
    finish_rows(store, "team-a", t0 + 20, ("free", "succeeded", 5, 5))  # unpriced
    finish_rows(store, "team-b", t0 + 30, ("m", "succeeded", 1, 1))
    finish_rows(store, "team-b", t0 + 3600, ("m", "succeeded", 9, 9))  # at end: outside
    finish_rows(store, "team-b", t0 - 1, ("m", "succeeded", 9, 9))  # before start: outside
    unroutable = _batch(store, "team-a")  # failed at ingest: finished, with no model
    store.insert_rows(unroutable, [IngestRow(1, "u", "failed", None, None, b"{}", 0)], t0 + 15)
    open_bid = _batch(store, "team-a")  # a queued row has no finished_at: never counted
    store.insert_rows(open_bid, [IngestRow(1, "q", "queued", "up", "m", b"{}", 0)], t0 + 5)
    cancelled = _batch(store, "team-a")  # ended unsent: not usage
    store.insert_rows(cancelled, [IngestRow(1, "x", "queued", "up", "m", b"{}", 0)], t0)
    store.end_queued_rows(cancelled, "batch_cancelled", t0 + 40)

    a_cost = 100 * 75 + 10 * 300
    got = store.usage(None, start=t0, end=t0 + 3600)
    assert got == [
        UsageGroup(tenant="team-a", requests=4, succeeded=2, failed=2, input_tokens=105,
                   output_tokens=15, cost_ticks=a_cost, unpriced=1),
        UsageGroup(tenant="team-b", requests=1, succeeded=1, failed=0, input_tokens=1,
                   output_tokens=1, cost_ticks=375, unpriced=0),
    ]  # fmt: skip
    assert store.usage("team-b", start=t0, end=t0 + 3600) == got[1:]
    assert store.usage("nobody", start=t0, end=t0 + 3600) == []
    by_model = store.usage("team-a", start=t0, end=t0 + 3600, by_model=True)
    assert [(g.model, g.requests, g.cost_ticks, g.unpriced) for g in by_model] == [
        ("free", 1, 0, 1), ("m", 2, a_cost, 0), (None, 1, 0, 0),
    ]  # fmt: skip
    wider = store.usage("team-b", start=t0 - 1, end=t0 + 3601)
    assert wider[0].requests == 3 and wider[0].input_tokens == 19


def test_the_range_query_uses_the_finished_at_index(store: SqlStore) -> None:
    if store.is_postgres:
        sql = "EXPLAIN SELECT count(*) FROM requests WHERE finished_at >= 1 AND finished_at < 2"
        with store.read() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql(sql))
    else:
        sql = (
            "EXPLAIN QUERY PLAN SELECT count(*) FROM requests "
            "WHERE finished_at >= 1 AND finished_at < 2"
        )
        with store.read() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(sql))
    assert "ix_requests_finished_at" in plan, plan
