"""Cost recorded by the SqlStore: each row's snapshot prices times its tokens, once, in the same
transaction as its tokens, summed onto the batch (SQLite and PostgreSQL via ``db_url``)."""

from __future__ import annotations

import time

from batchgate import ids
from batchgate.domain.records import Batch
from batchgate.storage.sql import SqlStore
from batchgate.storage.types import IngestRow, RowResult


def _batch(store: SqlStore) -> str:
    bid = ids.batch_id()
    now = int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": "", "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
        "created_at": now, "expires_at": now + 86400,
    }))  # fmt: skip
    return bid


def _row_costs(store: SqlStore, bid: str) -> dict[int, int | None]:
    with store.read() as conn:
        rows = conn.exec_driver_sql(
            store._q("SELECT line, cost_ticks FROM requests WHERE batch_id = ? ORDER BY line"),
            (bid,),
        ).all()
    return {int(r[0]): r[1] for r in rows}


def test_cost_is_recorded_once_from_the_snapshot_prices(store: SqlStore) -> None:
    bid = _batch(store)
    store.insert_rows(bid, [
        IngestRow(1, "a", "queued", "up", "m", b"{}", 0, ticks=(75.0, 300.0)),
        IngestRow(2, "b", "queued", "up", "m", b"{}", 0, ticks=(0.5, 1.25)),  # rounds per row
        IngestRow(3, "c", "queued", "up", "free", b"{}", 0),  # unpriced
        IngestRow(4, "d", "queued", "up", "m", b"{}", 0, ticks=(75.0, 300.0)),
    ], time.time())  # fmt: skip
    rows = store.lease([bid], "up", 10, owner="w", token="t1", now=time.time(), ttl=30)
    assert [r.line for r in rows] == [1, 2, 3, 4]

    def result(line: int, state: str, inp: int, out: int, token: str = "t1") -> RowResult:
        return RowResult(bid, line, token, state, status_code=200, response=b"{}",
                         input_tokens=inp, output_tokens=out)  # fmt: skip

    assert store.record([result(1, "queued", 0, 0)], time.time()) == 1  # a retry costs nothing
    assert store.record([result(1, "succeeded", 10, 10)], time.time()) == 0  # lease gone
    again = store.lease([bid], "up", 10, owner="w", token="t2", now=time.time(), ttl=30)
    assert [r.line for r in again] == [1]
    recorded = [
        result(1, "succeeded", 1000, 20, "t2"), result(2, "succeeded", 3, 3),
        result(3, "succeeded", 50, 50), result(4, "failed", 0, 0),
    ]  # fmt: skip
    assert store.record(recorded, time.time()) == 4
    assert store.record(recorded, time.time()) == 0  # exactly once: no double count
    costs = _row_costs(store, bid)
    assert costs == {1: 1000 * 75 + 20 * 300, 2: 5, 3: None, 4: 0}  # 2: round(5.25)
    batch = store.get_batch(bid)
    assert batch is not None
    assert batch.cost_ticks == sum(c or 0 for c in costs.values()) == 81_005
    assert batch.unpriced == 1  # row 3 used tokens without a price
    assert (batch.input_tokens, batch.output_tokens) == (1053, 73)
