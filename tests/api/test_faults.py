"""Retries through the real engine against the simulator's injected faults.

The simulator draws faults deterministically from (seed, body, attempt number), so each test
here has one fixed outcome: it is not flaky, it either holds or it does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
from openai.types import Batch

from batchgate.config import single_upstream
from batchgate.engine.retry import RetryPolicy
from batchgate.engine.worker import WorkerOptions
from batchgate.sim import SimHandle
from tests.helpers.servers import FAST_RETRY, ServerHandle

CHAT = "/v1/chat/completions"
PATIENT = WorkerOptions(
    lease_ttl=5.0, poll_interval=0.05,
    retry=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, max_retry_after=0.05),
)  # fmt: skip


def _jsonl(n: int, prefix: str = "q") -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"{prefix}{i}", "method": "POST", "url": CHAT,
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"msg {i}"}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _run(srv: ServerHandle, n: int, timeout: float = 60.0) -> tuple[Batch, list[Any], list[Any]]:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(n)), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    srv.wait_for(b.id, timeout=timeout)
    b = client.batches.retrieve(b.id)
    out = _read(client, b.output_file_id)
    err = _read(client, b.error_file_id)
    assert b.request_counts is not None
    assert b.request_counts.total == n
    assert b.request_counts.completed == len(out)
    assert b.request_counts.failed == len(err)
    ids = [x["custom_id"] for x in out + err]
    assert sorted(ids) == sorted(f"q{i}" for i in range(n))  # each line exactly once
    rows = srv.store.count_rows(b.id)
    assert rows.get("succeeded", 0) == len(out)
    assert sum(rows.values()) == n
    return b, out, err


def _read(client: openai.OpenAI, file_id: str | None) -> list[Any]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def _assert_all_succeeded(b: Batch, out: list[Any], err: list[Any], n: int) -> None:
    assert b.status == "completed"
    assert err == [] and b.error_file_id is None
    assert [o["custom_id"] for o in out] == [f"q{i}" for i in range(n)]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in out)


def test_429_is_retried_to_success(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(options=PATIENT)
    sim.configure(rate_429=0.3, retry_after_s=0)
    b, out, err = _run(srv, 100)
    _assert_all_succeeded(b, out, err, 100)
    stats = sim.stats()
    assert stats["faults"]["429"] > 10
    assert stats["requests"] == 100 + stats["faults"]["429"]  # one resend per 429
    assert stats["by_status"]["200"] == 100


def test_500_and_503_are_retried(make_server: Callable[..., ServerHandle], sim: SimHandle) -> None:
    srv = make_server(options=PATIENT)
    sim.configure(rate_500=0.2, rate_503=0.2, retry_after_s=0)
    b, out, err = _run(srv, 100)
    _assert_all_succeeded(b, out, err, 100)
    stats = sim.stats()
    assert stats["faults"]["500"] > 5 and stats["faults"]["503"] > 5
    assert stats["requests"] == 100 + stats["faults"]["500"] + stats["faults"]["503"]


def test_dropped_connections_are_retried(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(options=PATIENT)
    sim.configure(rate_drop=0.25)
    b, out, err = _run(srv, 100)
    _assert_all_succeeded(b, out, err, 100)
    stats = sim.stats()
    assert stats["dropped"] > 5
    assert stats["requests"] == 100 + stats["dropped"]


def test_malformed_replies_are_retried(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(options=PATIENT)
    sim.configure(rate_malformed=0.3)
    b, out, err = _run(srv, 100)
    _assert_all_succeeded(b, out, err, 100)
    stats = sim.stats()
    assert stats["faults"]["malformed"] > 10
    assert stats["requests"] == 100 + stats["faults"]["malformed"]
    for o in out:  # no half-written body reached the output file
        assert o["response"]["body"]["object"] == "chat.completion"


def test_500_every_time_gives_up_after_max_attempts(
    db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(db_url)  # FAST_RETRY
    sim.configure(rate_500=1.0)
    n = 10
    b, out, err = _run(srv, n)
    assert b.status == "completed"  # per-line failures never fail the batch
    assert out == [] and b.output_file_id is None
    assert sim.stats()["requests"] == n * FAST_RETRY.max_attempts
    assert [e["custom_id"] for e in err] == [f"q{i}" for i in range(n)]
    for e in err:
        assert e["error"] is None
        assert e["response"]["status_code"] == 500
        assert e["response"]["body"]["error"]["type"] == "server_error"
        assert set(e["response"]["body"]["error"]) == {"message", "type", "param", "code"}
    assert srv.store.count_rows(b.id) == {"failed": n}


def test_overload_is_absorbed(make_server: Callable[..., ServerHandle], sim: SimHandle) -> None:
    opts = WorkerOptions(
        lease_ttl=5.0, poll_interval=0.05,
        retry=RetryPolicy(max_attempts=30, base_delay=0.01, max_delay=0.05, max_retry_after=0.05),
    )  # fmt: skip
    srv = make_server(config=single_upstream(sim.url, concurrency=16, timeout=5), options=opts)
    sim.configure(overload_max_in_flight=4, latency_ms=20, retry_after_s=0.02)
    b, out, err = _run(srv, 100)
    _assert_all_succeeded(b, out, err, 100)
    stats = sim.stats()
    assert stats["max_in_flight"] <= 4
    assert stats["by_status"]["200"] == 100
    assert stats["by_status"].get("429", 0) > 0  # 16 senders against 4 slots did meet the limit
    assert stats["requests"] == 100 + stats["by_status"]["429"]
