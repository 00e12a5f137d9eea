"""Cost through the real engine: each row's cost recorded once (retries do not add to it), the
batch total equal to the sum over its rows, and shown in every dialect's object."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from anthropic.types.messages import MessageBatch
from openai.types import Batch

from batchgate.config import Config, Price, UpstreamConfig
from batchgate.domain.cost import usd
from batchgate.sim import SimHandle
from tests.api.test_faults import PATIENT
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"
PIN, POUT = 75, 300  # ticks per token: 0.15 / 0.60 USD per Mtok at half price


def priced_config(sim: SimHandle) -> Config:
    sim_up = UpstreamConfig(
        "sim", sim.url, concurrency=16, timeout=5.0, batch_discount=0.5,
        prices={"sim-model": Price(0.15, 0.60)},
    )  # fmt: skip
    free = UpstreamConfig("free", sim.url, concurrency=16, timeout=5.0)
    return Config(upstreams=(sim_up, free), default_upstream="sim")


def rows(srv: ServerHandle, batch_id: str) -> list[tuple[Any, ...]]:
    with srv.store.read() as conn:
        return list(conn.exec_driver_sql(
            srv.store._q(
                "SELECT input_tokens, output_tokens, cost_ticks, state FROM requests "
                "WHERE batch_id = ? ORDER BY line"
            ),
            (batch_id,),
        ).all())  # fmt: skip


def assert_cost_is_the_sum_over_rows(srv: ServerHandle, doc: dict[str, Any]) -> int:
    got = rows(srv, doc["id"])
    for inp, out, cost, state in got:
        assert cost == (inp * PIN + out * POUT if state == "succeeded" else 0), (inp, out, cost)
    total = sum(r[2] for r in got)
    assert total > 0
    assert doc["cost"] == {"ticks": total, "usd": usd(total), "priced": True}
    return total


def _jsonl(n: int, model: str = "sim-model") -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"q{i}", "method": "POST", "url": CHAT,
            "body": {"model": model, "messages": [{"role": "user", "content": f"msg {i} " * i}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def test_cost_after_retries_is_the_sum_over_rows(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim), options=PATIENT)
    sim.configure(rate_429=0.3, retry_after_s=0)
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(60)), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    srv.wait_for(b.id)
    assert sim.stats()["faults"]["429"] > 5
    raw = srv.http().get(f"/v1/batches/{b.id}").json()
    Batch.model_validate(raw, strict=True)  # the official SDK still reads it
    assert raw["request_counts"] == {"total": 60, "completed": 60, "failed": 0}
    total = assert_cost_is_the_sum_over_rows(srv, raw)
    usage = raw["usage"]
    assert total == usage["input_tokens"] * PIN + usage["output_tokens"] * POUT


def test_unpriced_models_make_the_cost_unknown(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim))
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(3, "free:x")), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    srv.wait_for(b.id)
    raw = srv.http().get(f"/v1/batches/{b.id}").json()
    assert raw["usage"]["total_tokens"] > 0
    assert raw["cost"] == {"ticks": 0, "usd": "0.000000000", "priced": False}
    assert [r[2] for r in rows(srv, b.id)] == [None, None, None]


def test_gateway_anthropic_and_jobs_show_the_cost(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim))
    http = srv.http()
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi there"}]}
    r = http.post("/v1/batches", json={
        "model": "sim:sim-model", "requests": [{"custom_id": "a", "body": body}],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["cost"] == {"ticks": 0, "usd": "0.000000000", "priced": True}
    srv.wait_for(r.json()["id"])
    assert_cost_is_the_sum_over_rows(srv, http.get(f"/v1/batches/{r.json()['id']}").json())

    params = {"model": "sim-model", "max_tokens": 16, "messages": body["messages"]}
    r = http.post("/v1/messages/batches", json={"requests": [{"custom_id": "m", "params": params}]})
    assert r.status_code == 200, r.text
    srv.wait_for(r.json()["id"])
    doc = http.get(f"/v1/messages/batches/{r.json()['id']}").json()
    MessageBatch.model_validate(doc)  # the official SDK still reads it
    assert_cost_is_the_sum_over_rows(srv, doc)

    r = http.post("/qai/v1/batch", json={"jobs": [{"model": "sim-model", "prompt": "2+2?"}]})
    assert r.status_code == 200, r.text
    (job_id,) = r.json()["job_ids"]
    (only,) = srv.store.list_batches(None, after=None, limit=10, dialect="jobs")[0]
    srv.wait_for(only.id)
    job = http.get(f"/qai/v1/batch/jobs/{job_id}").json()
    ((inp, out, cost, _),) = rows(srv, only.id)
    assert job["status"] == "completed" and job["cost_ticks"] == cost == inp * PIN + out * POUT
