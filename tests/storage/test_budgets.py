"""Budgets in the SqlStore (SQLite and PostgreSQL via ``db_url``): leases admitted only while
``spent + reserved < budget``, reservations that follow the rows' leases, tenant spend per day,
and the sweep that ends a capped batch's queued rows."""

from __future__ import annotations

import threading
import time

import pytest

from batchgate import ids
from batchgate.domain.budget import EXCEEDED, day_of
from batchgate.domain.records import Batch, TenantBudget
from batchgate.errors import BudgetNotFound
from batchgate.storage import migrate
from batchgate.storage.sql import SqlStore, open_store
from batchgate.storage.types import IngestRow, LeasedRow, RowResult

TICKS = (1.0, 2.0)  # ticks per input / output token


def _batch(store: SqlStore, n: int, *, budget: int | None = None, tenant: str = "t",
           reserve: int = 100) -> str:  # fmt: skip
    bid = ids.batch_id()
    now = int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": tenant, "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
        "created_at": now, "expires_at": now + 86400, "total": n, "budget_ticks": budget,
    }))  # fmt: skip
    store.insert_rows(bid, [
        IngestRow(i, f"c{i}", "queued", "up", "m", b"{}", 10, ticks=TICKS, reserve_ticks=reserve)
        for i in range(1, n + 1)
    ], time.time())  # fmt: skip
    return bid


def _lease(store: SqlStore, bids: list[str], n: int, owner: str = "w") -> list[LeasedRow]:
    return store.lease(bids, "up", n, owner=owner, token=ids.new_id("t"), now=time.time(), ttl=30)


def _done(row: LeasedRow, inp: int, out: int) -> RowResult:
    return RowResult(row.batch_id, row.line, row.lease_token, "succeeded", status_code=200,
                     response=b"{}", input_tokens=inp, output_tokens=out)  # fmt: skip


def test_a_batch_leases_only_while_spent_plus_reserved_is_under_its_budget(store: SqlStore) -> None:
    bid = _batch(store, 10, budget=250)
    first = _lease(store, [bid], 10)
    # 250 → 150 → 50 → -50: the third row is the one allowed to pass the budget.
    assert [r.line for r in first] == [1, 2, 3]
    assert _lease(store, [bid], 10) == []  # nothing left to reserve until a row settles
    store.record([_done(first[0], 20, 10)], time.time())  # costs 40: 210 spent + reserved
    assert [r.line for r in _lease(store, [bid], 10)] == [4]
    batch = store.get_batch(bid)
    assert batch is not None and batch.cost_ticks == 40
    assert store.batches_to_sweep(time.time()) == []  # not reached: nothing ends


def test_reaching_the_budget_ends_the_queued_rows_and_only_those(store: SqlStore) -> None:
    bid = _batch(store, 6, budget=100)
    (row,) = _lease(store, [bid], 10)
    store.record([_done(row, 50, 30)], time.time())  # 110 ticks: the budget is reached
    assert _lease(store, [bid], 10) == []
    sweeps = store.batches_to_sweep(time.time())
    assert [(s.batch_id, s.code) for s in sweeps] == [(bid, EXCEEDED)]
    assert "reached its budget of 0.000000100 USD" in sweeps[0].message
    assert store.end_queued_rows(bid, EXCEEDED, time.time(), sweeps[0].message) == 5
    assert store.count_rows(bid) == {"succeeded": 1, "failed": 5}
    batch = store.get_batch(bid)
    assert batch is not None
    assert (batch.completed, batch.failed, batch.canceled) == (1, 5, 0)
    assert store.batches_to_sweep(time.time()) == []  # nothing queued is left to end
    finished = store.rows_after(bid, 1, 10)
    assert {(r.error_code, r.error_message) for r in finished} == {(EXCEEDED, sweeps[0].message)}


def test_a_lost_lease_gives_its_reservation_back(store: SqlStore) -> None:
    bid = _batch(store, 4, budget=150)
    assert [r.line for r in _lease(store, [bid], 10, owner="dead")] == [1, 2]
    assert _lease(store, [bid], 10) == []
    assert store.reclaim_expired_leases(time.time() + 60) == 2  # the owner died
    # Rows 1 and 2 are due again only from then; their room went back at once.
    assert [r.line for r in _lease(store, [bid], 10)] == [3, 4]


def test_unpriced_rows_reserve_nothing(store: SqlStore) -> None:
    bid = _batch(store, 3, budget=1, reserve=0)
    with store.write() as conn:
        conn.exec_driver_sql(store._q("UPDATE requests SET reserve_ticks = NULL"))
    assert len(_lease(store, [bid], 10)) == 3


def test_a_tenant_budget_spans_its_batches_and_counts_spend_per_day(store: SqlStore) -> None:
    now = time.time()
    store.set_budget("t", 250, "month", int(now))
    a, b = _batch(store, 5), _batch(store, 5)
    other = _batch(store, 5, tenant="u")  # another tenant: no budget
    got = _lease(store, [a, b, other], 30)
    mine = [r for r in got if r.batch_id in (a, b)]
    assert len(mine) == 3  # 250 → 150 → 50 → -50 across both batches
    assert len([r for r in got if r.batch_id == other]) == 5
    store.record([_done(mine[0], 30, 0), *[_done(r, 1, 1) for r in got if r.batch_id == other]],
                 now)  # fmt: skip
    (entry,) = store.list_budgets(now)
    assert (entry.tenant, entry.budget_ticks, entry.period) == ("t", 250, "month")
    assert (entry.spent_ticks, entry.reserved_ticks) == (30, 200)
    with store.read() as conn:
        spend = conn.exec_driver_sql("SELECT tenant, day, cost_ticks FROM tenant_spend").all()
    assert sorted(tuple(r) for r in spend) == [("t", day_of(now), 30), ("u", day_of(now), 15)]
    assert len(_lease(store, [a, b], 10)) == 1  # 250 - 30 - 200 = 20 left: one more row


def test_a_reached_tenant_budget_ends_every_running_batch_of_the_tenant(store: SqlStore) -> None:
    now = time.time()
    store.set_budget("t", 100, "day", int(now))
    a, b = _batch(store, 3), _batch(store, 3)
    other = _batch(store, 3, tenant="u")
    (row,) = _lease(store, [a], 1)
    store.record([_done(row, 100, 0)], now)
    sweeps = store.batches_to_sweep(now)
    assert sorted(s.batch_id for s in sweeps) == sorted([a, b])
    assert all(s.code == EXCEEDED and "tenant 't' reached its budget" in s.message for s in sweeps)
    assert "today" in sweeps[0].message
    assert other not in {s.batch_id for s in sweeps}
    # Tomorrow the day's budget starts over.
    assert store.budget_sweeps(now + 86_400) == []


def test_a_budget_can_be_replaced_and_removed(store: SqlStore) -> None:
    store.set_budget("t", 100, "day", 1)
    store.set_budget("t", 500, "total", 2)
    assert store.get_budget("t") == TenantBudget(
        tenant="t", budget_ticks=500, period="total", updated_at=2
    )
    store.delete_budget("t")
    assert store.get_budget("t") is None
    with pytest.raises(BudgetNotFound, match="has no budget"):
        store.delete_budget("t")


def test_concurrent_leasers_overshoot_by_at_most_one_reservation(store: SqlStore) -> None:
    """Eight threads lease one row at a time for one budget: the database serializes them."""
    budget, reserve = 1_000, 70
    bid = _batch(store, 60, budget=budget, reserve=reserve)
    leased: list[LeasedRow] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for _ in range(20):
            got = _lease(store, [bid], 1, owner=f"w{k}")
            with lock:
                leased.extend(got)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.line for r in leased}) == len(leased)  # no row leased twice
    reserved = reserve * len(leased)
    assert budget <= reserved < budget + reserve  # 15 rows: 1,050 reserved


def test_the_budgets_migration_counts_the_spend_recorded_before_it(db_url: str) -> None:
    old = SqlStore(db_url)
    try:
        migrate.upgrade(old._write, "0005")
        day = 20_000  # 2024-10-04
        with old.write() as conn:
            for bid, tenant in (("b1", "t"), ("b2", "t"), ("b3", "u")):
                conn.exec_driver_sql(old._q(
                    "INSERT INTO batches (id, tenant, dialect, endpoint, completion_window, "
                    "status, created_at, expires_at) VALUES (?, ?, 'openai', '/v1/x', '24h', "
                    "'completed', 0, 0)"
                ), (bid, tenant))  # fmt: skip
            rows = [("b1", 1, 10, day * 86_400 + 5), ("b1", 2, 20, day * 86_400 + 86_399.5),
                    ("b2", 1, 7, (day + 1) * 86_400), ("b2", 2, None, day * 86_400),
                    ("b3", 1, 1, day * 86_400)]  # fmt: skip
            for bid, line, cost, finished in rows:
                conn.exec_driver_sql(old._q(
                    "INSERT INTO requests (batch_id, line, custom_id, state, body, cost_ticks, "
                    "finished_at) VALUES (?, ?, 'c', 'succeeded', ?, ?, ?)"
                ), (bid, line, b"{}", cost, finished))  # fmt: skip
    finally:
        old.close()
    store = open_store(db_url)
    try:
        with store.read() as conn:
            got = conn.exec_driver_sql("SELECT tenant, day, cost_ticks FROM tenant_spend").all()
        assert sorted(tuple(r) for r in got) == [("t", day, 30), ("t", day + 1, 7), ("u", day, 1)]
    finally:
        store.close()
