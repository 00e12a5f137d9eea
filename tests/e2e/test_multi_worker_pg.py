"""Scale-out on PostgreSQL: one API process and two worker processes share one database.

Both workers must lease rows of the same batch; one is SIGKILLed half-way while holding leases;
the survivor takes its rows over once their lease runs out, and the batch completes with every
custom_id exactly once.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers.procs import (
    TERMINAL,
    Proc,
    Procs,
    chat_lines,
    priced_config_file,
    read_results,
    sdk,
)

pytestmark = pytest.mark.timeout(120)

N = 2000
LEASE_TTL = 2.0


def _owner_pid(owner: str) -> int:
    """Worker owner ids are ``<host>-<pid>-<random>``."""
    m = re.fullmatch(r".*-(\d+)-[0-9a-f]{8}", owner)
    assert m, owner
    return int(m.group(1))


class Db:
    """Direct reads of the shared database (the test's own view of who holds what)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def leased_by(self, batch_id: str) -> dict[int, int]:
        """Leased rows per worker pid."""
        rows = self.conn.execute(
            "SELECT lease_owner, COUNT(*) FROM requests "
            "WHERE batch_id = %s AND state = 'leased' GROUP BY 1",
            (batch_id,),
        ).fetchall()
        return {_owner_pid(owner): int(n) for owner, n in rows}

    def batch(self, batch_id: str) -> tuple[Any, ...]:
        row = self.conn.execute(
            "SELECT status, completed, failed, total FROM batches WHERE id = %s", (batch_id,)
        ).fetchone()
        assert row is not None
        return tuple(row)

    def states(self, batch_id: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT state, COUNT(*) FROM requests WHERE batch_id = %s GROUP BY 1", (batch_id,)
        ).fetchall()
        return {str(s): int(n) for s, n in rows}


def _connect(pg_url: str, api: Proc, request: pytest.FixtureRequest) -> tuple[Db, Any]:
    """The test's own view of the database, and the openai SDK on the API process."""
    conn = psycopg.connect(pg_url, autocommit=True, connect_timeout=5)
    request.addfinalizer(conn.close)
    assert api.port is not None
    return Db(conn), sdk(api.port)


def test_two_workers_share_a_batch_and_survive_a_kill(
    pg_url: str, tmp_path: Path, procs: Procs, request: pytest.FixtureRequest
) -> None:
    # pg_url comes first so that its teardown (DROP SCHEMA) runs after the processes are killed.
    data = tmp_path / "data"  # blobs shared by every process on this machine
    _, upstream = procs.simulator("--latency-ms", "20", "--jitter-ms", "10")
    common = ("--database-url", pg_url, "--data-dir", str(data))
    api = procs.serve("--no-worker", *common, "--upstream", upstream)
    workers: list[Proc] = [
        procs.worker(
            *common, "--upstream", upstream, "--lease-ttl", str(LEASE_TTL), "--concurrency", "16"
        )
        for _ in range(2)
    ]
    db, client = _connect(pg_url, api, request)
    f = client.files.create(file=("input.jsonl", chat_lines(N)), purpose="batch")
    batch_id = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id

    # Both workers lease rows of the batch while it runs.
    seen: set[int] = set()

    def both_leasing() -> bool:
        seen.update(db.leased_by(batch_id))
        if db.batch(batch_id)[0] in TERMINAL:
            raise procs.fail(f"batch ended before both workers leased rows (saw {seen})")
        return seen >= {w.pid for w in workers}

    procs.wait_until(both_leasing, "both workers leasing rows", 30.0)

    # Kill one worker half-way, while it holds leases.
    victim, survivor = workers

    def half_way_victim_leasing() -> bool:
        status, completed, _, _ = db.batch(batch_id)
        if status in TERMINAL or completed > 0.7 * N:
            raise procs.fail(f"batch got too far before the kill: {status} {completed}/{N}")
        return completed >= 0.3 * N and db.leased_by(batch_id).get(victim.pid, 0) > 0

    procs.wait_until(half_way_victim_leasing, "30% done with the victim holding leases", 30.0)
    victim.kill9()
    orphaned = db.leased_by(batch_id).get(victim.pid, 0)
    assert orphaned > 0, "the killed worker held no leases"
    completed_at_kill = db.batch(batch_id)[1]
    assert completed_at_kill < N

    # The survivor takes the dead worker's rows over and finishes the batch.
    def ended() -> bool:
        return db.batch(batch_id)[0] in TERMINAL

    procs.wait_until(ended, "batch ends", 30.0, survivor, interval=0.05)
    batch = client.batches.retrieve(batch_id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (N, N, 0)
    results = read_results(client, batch)
    ids = results.custom_ids
    dups = [k for k, n in Counter(ids).items() if n > 1]
    assert not dups, f"custom_ids written more than once: {dups[:10]}"
    assert sorted(ids) == sorted(f"req-{i}" for i in range(N))
    assert not results.errors, results.errors[:3]
    assert all(r["response"]["status_code"] == 200 for r in results.output)
    assert db.states(batch_id) == {"succeeded": N}
    log = survivor.stderr_path.read_text(errors="replace")
    assert "leases_reclaimed" in log, "the survivor never reclaimed the dead worker's leases"
    client.close()


def test_two_workers_keep_one_budget(
    pg_url: str, tmp_path: Path, procs: Procs, request: pytest.FixtureRequest
) -> None:
    """Two worker processes, 32 requests in flight each, lease one budgeted batch: the row
    locks on PostgreSQL keep their combined spend within one request's cost of the cap."""
    data = tmp_path / "data"
    _, upstream = procs.simulator("--latency-ms", "40", "--jitter-ms", "20")
    config = priced_config_file(tmp_path / "priced.toml", upstream, concurrency=32)
    common = ("--database-url", pg_url, "--data-dir", str(data), "--config", str(config))
    api = procs.serve("--no-worker", *common)
    for _ in range(2):
        procs.worker(*common)
    db, client = _connect(pg_url, api, request)
    f = client.files.create(file=("input.jsonl", chat_lines(N)), purpose="batch")
    cap = 20_000_000  # ticks: about 200 of these requests
    batch_id = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
        extra_body={"budget_usd": "0.02"},
    ).id  # fmt: skip
    procs.wait_until(lambda: db.batch(batch_id)[0] in TERMINAL, "batch ends", 60.0)
    rows = db.conn.execute(
        "SELECT state, cost_ticks, error_code FROM requests WHERE batch_id = %s", (batch_id,)
    ).fetchall()
    sent = [int(cost) for state, cost, _ in rows if state == "succeeded"]
    spent = sum(sent)
    assert cap <= spent < cap + max(sent), (spent, max(sent))
    assert 64 < len(sent) < N  # more than both workers hold in flight at once
    assert {code for state, _, code in rows if state != "succeeded"} == {"budget_exceeded"}
    assert db.batch(batch_id)[:3] == ("completed", len(sent), N - len(sent))
    client.close()
