"""Rate limits and outages are waited out, not charged: through the real engine and server.

* A 429 (or 503 / 529) delays its row and never uses up one of its attempts.
* A run of connection failures opens the lane's circuit: the rows are held uncharged, the
  upstream is probed, the batch object says ``unavailable``, the log says it once; when the
  upstream is back every row succeeds and the circuit closes.
* A row whose upstream accepts the connection but never answers is retried after the read
  timeout.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from batchgate.cli.main import app
from batchgate.config import single_upstream
from batchgate.engine.retry import RetryPolicy
from batchgate.engine.worker import WorkerOptions
from batchgate.sim import SimConfig, SimHandle, start_in_thread
from batchgate.storage.schema import batches
from tests.helpers.procs import free_port
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"
QUICK = WorkerOptions(
    lease_ttl=5.0, poll_interval=0.05,
    retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=0.05),
)  # fmt: skip


def _jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"q{i}", "method": "POST", "url": CHAT,
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"m {i}"}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _create(srv: ServerHandle, n: int) -> str:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(n)), purpose="batch").id
    return client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h").id


def _attempts(srv: ServerHandle, batch_id: str) -> list[int]:
    with srv.store.read() as conn:
        rows = conn.execute(
            text("SELECT attempts FROM requests WHERE batch_id = :b ORDER BY line"),
            {"b": batch_id},
        )
        return [int(r[0]) for r in rows]


def _until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {check}")


def _all_succeeded(srv: ServerHandle, batch_id: str, n: int) -> None:
    srv.wait_for(batch_id, timeout=60)
    b = srv.openai().batches.retrieve(batch_id)
    assert b.status == "completed"
    assert b.request_counts is not None
    assert (b.request_counts.completed, b.request_counts.failed) == (n, 0)
    assert srv.store.count_rows(batch_id) == {"succeeded": n}


def test_429s_never_use_up_attempts(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(options=QUICK)
    sim.configure(rate_429=1.0, retry_after_s=0.02)
    n = 4
    bid = _create(srv, n)
    # far more sends than max_attempts allows a failure, and no row ended
    _until(lambda: sim.stats()["requests"] >= n * QUICK.retry.max_attempts * 4)
    assert srv.store.count_rows(bid).get("failed", 0) == 0
    assert max(_attempts(srv, bid)) <= 1  # each send was given back (one may be in flight)
    sim.configure(rate_429=0.0)
    _all_succeeded(srv, bid, n)


def test_a_dead_upstream_opens_the_circuit_holds_the_rows_and_recovers(
    make_server: Callable[..., ServerHandle], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="batchgate.worker")
    port = free_port()  # nothing listens there yet
    cfg = single_upstream(f"http://127.0.0.1:{port}/v1", concurrency=8)
    srv = make_server(config=cfg, options=QUICK)
    n = 20
    bid = _create(srv, n)
    client = srv.openai()

    def unavailable() -> Any:
        ups = client.batches.retrieve(bid).model_extra["upstreams"]  # type: ignore[index]
        return ups if ups and ups[0]["state"] == "unavailable" else None

    ups = _until(unavailable)
    assert ups[0]["name"] == "default" and isinstance(ups[0]["since"], int)
    assert "connect" in ups[0]["last_error"].lower() or "refused" in ups[0]["last_error"]
    shown = CliRunner().invoke(app, ["status", bid, "--url", srv.url])
    assert shown.exit_code == 0, shown.output
    assert "upstream  upstream default unavailable for" in shown.output  # batchgate status
    time.sleep(2.5)  # a few probes fail meanwhile
    b = client.batches.retrieve(bid)
    assert b.status == "in_progress" and b.request_counts is not None
    assert b.request_counts.failed == 0
    assert max(_attempts(srv, bid)) < QUICK.retry.max_attempts  # not used up: held
    with start_in_thread(SimConfig(), port=port):
        _all_succeeded(srv, bid, n)
        after = client.batches.retrieve(bid).model_extra["upstreams"]  # type: ignore[index]
    assert after == [{"name": "default", "state": "available", "since": None, "last_error": None}]
    opened = [r for r in caplog.records if r.getMessage().startswith("upstream_unavailable")]
    closed = [r for r in caplog.records if r.getMessage().startswith("upstream_available")]
    assert len(opened) == 1 and len(closed) == 1  # once each, not once per request
    assert f"127.0.0.1:{port}" in opened[0].getMessage()
    assert "failed_probes=" in closed[0].getMessage()


def test_a_silent_upstream_is_retried_after_the_read_timeout(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=single_upstream(sim.url, timeout=0.3, concurrency=2), options=QUICK)
    sim.configure(rate_slow=1.0, slow_ms=5000)
    n = 4
    bid = _create(srv, n)
    _until(lambda: sim.stats()["requests"] >= 2)  # sent, then held by the silent upstream
    time.sleep(0.5)  # past the read timeout: retried (or held by the circuit), not failed
    assert srv.store.count_rows(bid).get("failed", 0) == 0
    sim.configure(rate_slow=0.0)
    _all_succeeded(srv, bid, n)
    assert sim.stats()["requests"] > n  # the timed-out sends were made again


def test_an_outage_past_the_window_expires_the_batch_and_holds_no_lease(
    make_server: Callable[..., ServerHandle],
) -> None:
    """Rows held by an open circuit go back to the store, so expiry (and cancel) reach them."""
    port = free_port()
    srv = make_server(
        config=single_upstream(f"http://127.0.0.1:{port}/v1", concurrency=4), options=QUICK
    )
    n = 12
    bid = _create(srv, n)
    client = srv.openai()
    _until(lambda: (client.batches.retrieve(bid).model_extra or {}).get("upstreams"))
    _until(lambda: client.batches.retrieve(bid).model_extra["upstreams"][0]["state"]  # type: ignore[index]
           == "unavailable")  # fmt: skip
    with srv.store.write() as conn:
        conn.execute(
            update(batches).where(batches.c.id == bid).values(expires_at=int(time.time()) - 1)
        )
    done = srv.wait_for(bid, timeout=30)
    assert done["status"] == "expired"
    rows = srv.store.count_rows(bid)
    assert rows.get("leased", 0) == 0 and sum(rows.values()) == n
    assert done["expired"] >= n - 1  # at most the probe in flight ended otherwise
