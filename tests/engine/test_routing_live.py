"""Routing and rate limits through the live server: each line goes to its own upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from batchgate.config import Config, UpstreamConfig, single_upstream
from batchgate.sim import SimConfig, SimHandle, start_in_thread
from tests.helpers.servers import ServerHandle


def _jsonl(models: list[str], max_tokens: int = 16) -> bytes:
    return "\n".join(
        json.dumps({
            "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": m, "max_tokens": max_tokens,
                     "messages": [{"role": "user", "content": "hi"}]},
        })
        for i, m in enumerate(models)
    ).encode()  # fmt: skip


@pytest.fixture
def second_sim() -> Iterator[SimHandle]:
    handle = start_in_thread(SimConfig())
    yield handle
    handle.stop()


def _run(srv: ServerHandle, data: bytes) -> tuple[dict[str, dict[str, object]], float]:
    client = srv.openai()
    f = client.files.create(file=("in.jsonl", data), purpose="batch")
    started = time.monotonic()
    b = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    srv.wait_for(b.id)
    elapsed = time.monotonic() - started
    b = client.batches.retrieve(b.id)
    lines = []
    for fid in (b.output_file_id, b.error_file_id):
        if fid:
            lines += [json.loads(x) for x in client.files.content(fid).text.splitlines()]
    return {str(x["custom_id"]): x for x in lines}, elapsed


def test_each_line_is_routed_on_its_own(
    make_server: Callable[..., ServerHandle], sim: SimHandle, second_sim: SimHandle
) -> None:
    config = Config(
        upstreams=(
            UpstreamConfig("alpha", sim.url, concurrency=4, models=("sim-model",)),
            UpstreamConfig("beta", second_sim.url, concurrency=4),
        ),
        aliases={"fast": "beta/sim-model"},
    )
    srv = make_server(config=config)
    by_id, _ = _run(srv, _jsonl(["sim-model", "beta:other", "fast", "nowhere", "alpha/x"]))

    def sent_model(cid: str) -> object:
        return by_id[cid]["response"]["body"]["model"]  # type: ignore[index]

    assert sent_model("r0") == "sim-model"
    assert sent_model("r1") == "other"  # the prefix is stripped before sending
    assert sent_model("r2") == "sim-model"
    assert sent_model("r4") == "x"
    assert by_id["r3"]["response"] is None
    assert by_id["r3"]["error"]["code"] == "model_not_found"  # type: ignore[index]
    assert sim.stats()["requests"] == 2 and second_sim.stats()["requests"] == 2


def test_rpm_budget_spaces_requests(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    # 120 rpm = 2 per second after a burst of 20 (ten seconds' worth): 26 lines need >= 3 s.
    srv = make_server(config=single_upstream(sim.url, rpm=120, concurrency=16))
    by_id, elapsed = _run(srv, _jsonl(["sim-model"] * 26))
    assert len(by_id) == 26 and sim.stats()["requests"] == 26
    assert elapsed >= 2.5


def test_concurrency_bound_holds(make_server: Callable[..., ServerHandle], sim: SimHandle) -> None:
    sim.configure(latency_ms=30)
    srv = make_server(config=single_upstream(sim.url, concurrency=5))
    by_id, _ = _run(srv, _jsonl(["sim-model"] * 60))
    assert len(by_id) == 60
    assert sim.stats()["max_in_flight"] == 5
