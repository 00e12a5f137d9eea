"""Cancel and expiry of running batches (wire spec §2.3): finished results are delivered, the
rest end in the error file with ``batch_cancelled`` / ``batch_expired``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import openai
from openai.types import Batch
from sqlalchemy import update

from batchgate.config import single_upstream
from batchgate.sim import SimHandle
from batchgate.storage.schema import batches
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"
N = 300


def _jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"c{i}", "method": "POST", "url": CHAT,
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"m {i}"}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _slow_server(
    make_server: Callable[..., ServerHandle], sim: SimHandle, db_url: str
) -> ServerHandle:
    sim.configure(latency_ms=200)
    return make_server(db_url, config=single_upstream(sim.url, concurrency=4, timeout=5))


def _start(srv: ServerHandle, window: str = "24h") -> Batch:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(N)), purpose="batch").id
    return client.batches.create(
        input_file_id=fid,
        endpoint=CHAT,
        completion_window=window,  # type: ignore[arg-type]
    )


def _wait_some_done(srv: ServerHandle, batch_id: str, at_least: int = 4) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if srv.store.count_rows(batch_id).get("succeeded", 0) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"no progress on {batch_id}: {srv.store.count_rows(batch_id)}")


def _read(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def _check_split(
    srv: ServerHandle, b: Batch, code: str, end_state: str, sim: SimHandle
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Output + error files hold every line once; counts match the rows and the upstream."""
    client = srv.openai()
    out, err = _read(client, b.output_file_id), _read(client, b.error_file_id)
    assert b.request_counts is not None
    rc = b.request_counts
    assert rc.total == N
    assert rc.completed + rc.failed == rc.total
    assert rc.completed == len(out)
    assert rc.failed == len(err)
    assert 4 <= rc.completed < N
    ids = [x["custom_id"] for x in out + err]
    assert len(ids) == len(set(ids)) == N
    assert set(ids) == {f"c{i}" for i in range(N)}
    assert [o["custom_id"] for o in out] == sorted(
        (o["custom_id"] for o in out), key=lambda c: int(c[1:])
    )
    for o in out:
        assert o["response"]["status_code"] == 200 and o["error"] is None
    for e in err:
        assert e["response"] is None
        assert e["error"]["code"] == code
        assert isinstance(e["error"]["message"], str) and e["error"]["message"]
    rows = srv.store.count_rows(b.id)
    assert rows == {"succeeded": rc.completed, end_state: rc.failed}
    Batch.model_validate(srv.http().get(f"/v1/batches/{b.id}").json(), strict=True)
    assert sim.stats()["requests"] == rc.completed  # nothing was sent that was not delivered
    return out, err


def test_cancel_running_batch(
    db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = _slow_server(make_server, sim, db_url)
    client = srv.openai()
    b = _start(srv)
    _wait_some_done(srv, b.id)

    mid = client.batches.retrieve(b.id)
    assert mid.status == "in_progress"
    assert mid.in_progress_at is not None and mid.finalizing_at is None
    assert mid.request_counts is not None
    assert mid.request_counts.total == N
    assert 4 <= mid.request_counts.completed < N
    assert mid.request_counts.failed == 0
    assert mid.output_file_id is None and mid.error_file_id is None

    c = client.batches.cancel(b.id)
    assert c.id == b.id
    assert c.status == "cancelling"
    assert c.cancelling_at is not None and c.cancelling_at >= c.created_at
    assert c.cancelled_at is None

    again = client.batches.cancel(b.id)  # idempotent while cancelling
    assert again.status in ("cancelling", "cancelled")
    assert again.cancelling_at == c.cancelling_at

    srv.wait_for(b.id, timeout=20)
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    assert done.cancelling_at == c.cancelling_at
    assert done.cancelled_at is not None and done.cancelled_at >= done.cancelling_at
    assert done.completed_at is None and done.failed_at is None and done.expired_at is None
    assert done.in_progress_at is not None
    assert done.output_file_id is not None and done.error_file_id is not None
    _check_split(srv, done, "batch_cancelled", "canceled", sim)

    # cancelling a cancelled batch returns it unchanged
    assert client.batches.cancel(b.id) == done
    assert client.batches.retrieve(b.id) == done


def test_cancel_before_validation(
    db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    url = db_url
    api_only = make_server(url, worker=False)
    client = api_only.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(5)), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    c = client.batches.cancel(b.id)
    assert c.status == "cancelling"
    assert c.in_progress_at is None
    make_server(url)  # a worker on the same database finishes the cancel
    row = api_only.wait_for(b.id, timeout=20)
    assert row["status"] == "cancelled"
    done = client.batches.retrieve(b.id)
    assert done.cancelled_at is not None
    assert done.in_progress_at is None
    assert done.output_file_id is None
    assert sim.stats()["requests"] == 0
    assert done.request_counts is not None
    assert done.request_counts.completed == 0
    assert done.request_counts.completed + done.request_counts.failed == (done.request_counts.total)


def test_expiry_delivers_finished_and_expires_the_rest(
    db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = _slow_server(make_server, sim, db_url)
    client = srv.openai()
    b = _start(srv, window="1h")
    assert b.expires_at == b.created_at + 3600
    _wait_some_done(srv, b.id)

    past = int(time.time()) - 1
    with srv.store.write() as conn:
        conn.execute(update(batches).where(batches.c.id == b.id).values(expires_at=past))

    srv.wait_for(b.id, timeout=20)
    done = client.batches.retrieve(b.id)
    assert done.status == "expired"
    assert done.expires_at == past
    assert done.expired_at is not None and done.expired_at >= past
    assert done.in_progress_at is not None and done.finalizing_at is not None
    assert done.in_progress_at <= done.finalizing_at <= done.expired_at
    assert done.completed_at is None and done.cancelled_at is None and done.failed_at is None
    assert done.output_file_id is not None and done.error_file_id is not None
    out, _ = _check_split(srv, done, "batch_expired", "expired", sim)
    assert done.usage is not None
    assert done.usage.input_tokens == sum(
        o["response"]["body"]["usage"]["prompt_tokens"] for o in out
    )
    # an expired batch is terminal: cancel is a conflict
    try:
        client.batches.cancel(b.id)
    except openai.ConflictError as exc:
        assert exc.status_code == 409
    else:
        raise AssertionError("cancel of an expired batch did not fail")
