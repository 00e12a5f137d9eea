"""The simulator's injected faults, overload mode, latency, stats and live config, over real
HTTP; plus the deterministic fault picker on its own."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from batchgate.sim import Fault, FaultPicker, SimConfig, SimHandle

DEFAULTS = SimConfig().to_dict()
CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def client(sim: SimHandle) -> Iterator[httpx.Client]:
    # conftest's ``sim`` fixture has already reset the config and the counters.
    with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
        yield c


def post_chat(client: httpx.Client, **extra: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json={**CHAT, **extra})


def wait_for(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_rate_429_has_retry_after_and_error_envelope(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_429=1.0, retry_after_s=2)
    reply = post_chat(client)
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["retry-after-ms"] == "2000"
    assert reply.headers["x-request-id"].startswith("req_")
    assert reply.json()["error"]["type"] == "rate_limit_error"
    assert sim.stats()["faults"] == {"429": 1}


def test_rate_500(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_500=1.0)
    reply = post_chat(client)
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "server_error"
    assert "retry-after" not in reply.headers


def test_rate_503_has_retry_after(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_503=1.0, retry_after_s=0.5)
    reply = post_chat(client)
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "0.5"
    assert reply.json()["error"]["code"] == "service_unavailable"


def test_drop_closes_without_response(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_drop=1.0)
    with pytest.raises(httpx.TransportError):
        post_chat(client)
    stats = sim.stats()
    assert stats["dropped"] == 1
    assert stats["by_status"] == {}
    assert stats["in_flight"] == 0
    sim.configure(rate_drop=0.0)
    assert post_chat(client).status_code == 200  # the client recovers with a new connection


def test_slow_reply_outlasts_client_timeout(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_slow=1.0, slow_ms=2000)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=CHAT, timeout=0.5)
    assert time.monotonic() - started < 1.5
    # The client hung up: the pending reply is cancelled and its slot released.
    wait_for(lambda: sim.stats()["in_flight"] == 0)
    assert sim.stats()["cancelled"] == 1


def test_slow_reply_arrives_after_slow_ms(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_slow=1.0, slow_ms=300)
    started = time.monotonic()
    reply = post_chat(client)
    assert reply.status_code == 200
    assert time.monotonic() - started >= 0.29


def test_malformed_is_200_with_unparseable_body(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_malformed=1.0)
    reply = post_chat(client)
    assert reply.status_code == 200
    assert reply.content.startswith(b'{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content)


def test_fault_order_drop_wins(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_drop=1.0, rate_429=1.0, rate_500=1.0)
    with pytest.raises(httpx.TransportError):
        post_chat(client)
    assert sim.stats()["faults"] == {"drop": 1}


def test_faults_apply_to_every_model_endpoint(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_500=1.0)
    assert client.post("/v1/embeddings", json={"model": "e", "input": "x"}).status_code == 500
    assert client.post("/v1/completions", json={"model": "m", "prompt": "x"}).status_code == 500
    assert client.post("/v1/responses", json={"model": "m", "input": "x"}).status_code == 500
    assert client.get("/v1/models").status_code == 200  # control and GET routes: no faults


def test_partial_rates_are_deterministic_per_body_and_attempt(
    sim: SimHandle, client: httpx.Client
) -> None:
    sim.configure(rate_500=0.5, seed=7)

    def run() -> list[int]:
        sim.reset()
        return [post_chat(client, user=f"line-{i}").status_code for i in range(40)]

    first = run()
    assert first == run()
    assert 8 <= first.count(500) <= 32
    # A retry of a failed body draws afresh: some of them succeed on the second attempt.
    sim.reset()
    failed = [i for i, status in enumerate(first) if status == 500]
    for i in failed:
        post_chat(client, user=f"line-{i}")
    retried = [post_chat(client, user=f"line-{i}").status_code for i in failed]
    assert 200 in retried


def test_latency_delays_replies(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(latency_ms=200, jitter_ms=20)
    started = time.monotonic()
    assert post_chat(client).status_code == 200
    assert 0.17 <= time.monotonic() - started < 1.0


async def _fire(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5.0) as client:
        return await asyncio.gather(
            *(client.post("/v1/chat/completions", json=CHAT) for _ in range(count))
        )


def test_overload_mode_rejects_beyond_max_in_flight(sim: SimHandle, client: httpx.Client) -> None:
    limit = 4
    sim.configure(overload_max_in_flight=limit, latency_ms=300, retry_after_s=1)
    replies = asyncio.run(_fire(sim.base_url, limit + 5))
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) >= limit
    assert statuses.count(429) >= 1
    rejected = next(r for r in replies if r.status_code == 429)
    assert rejected.headers["retry-after"] == "1"
    error = rejected.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "overloaded" in error["message"]
    stats = sim.stats()
    assert stats["max_in_flight"] == limit
    assert stats["requests"] == limit + 5
    assert stats["by_status"]["429"] == statuses.count(429)


def test_stats_count_and_reset(sim: SimHandle, client: httpx.Client) -> None:
    post_chat(client)
    post_chat(client)
    client.post("/v1/embeddings", json={"model": "e", "input": "x"})
    client.post("/v1/embeddings", content=b"not json")
    client.get("/v1/models")  # not counted: only POSTs to the model endpoints are
    stats = client.get("/_sim/stats").json()
    assert stats == {
        "requests": 4,
        "in_flight": 0,
        "max_in_flight": 1,
        "by_status": {"200": 3, "400": 1},
        "dropped": 0,
        "cancelled": 0,
        "rate_limited": 0,
        "by_path": {"/v1/chat/completions": 2, "/v1/embeddings": 2},
        "faults": {},
    }
    assert sim.stats() == stats
    reset = client.post("/_sim/reset").json()
    assert reset["requests"] == 0 and reset["by_status"] == {} and reset["max_in_flight"] == 0
    assert client.get("/_sim/stats").json() == reset


def test_config_endpoint_applies_changes_live(sim: SimHandle, client: httpx.Client) -> None:
    reply = client.post("/_sim/config", json={"rate_503": 1, "models": ["a"]})
    assert reply.status_code == 200
    config = reply.json()
    assert config == {**DEFAULTS, "rate_503": 1.0, "models": ["a"]}
    assert client.get("/_sim/config").json() == config
    assert sim.config.rate_503 == 1.0
    assert post_chat(client).status_code == 503
    for bad in ({"rate_503": 2}, {"no_such_knob": 1}, {"latency_ms": "fast"}, [1]):
        rejected = client.post("/_sim/config", json=bad)
        assert rejected.status_code == 400
        assert "error" in rejected.json()
    assert client.get("/_sim/config").json() == config  # unchanged by the bad ones
    assert client.post("/_sim/config", json={}).json() == config


def test_handle_configure_validates(sim: SimHandle) -> None:
    with pytest.raises(ValueError, match="unknown"):
        sim.configure(nope=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sim.configure(rate_429=-0.1)


def test_sim_config_validation() -> None:
    assert SimConfig(latency_ms=5).latency_ms == 5.0  # ints accepted for floats
    with pytest.raises(ValueError):
        SimConfig(rate_drop=1.5)
    with pytest.raises(ValueError):
        SimConfig(slow_ms=-1)
    with pytest.raises(ValueError):
        SimConfig(overload_max_in_flight=True)
    with pytest.raises(ValueError):
        SimConfig(models="sim-model")  # type: ignore[arg-type]  # the wrong type is the test


def test_fault_picker_is_deterministic_and_ordered() -> None:
    config = SimConfig(rate_429=0.3, rate_500=0.3, seed=3)
    bodies = [f'{{"line": {i}}}'.encode() for i in range(300)]
    first = [FaultPicker().pick(config, body) for body in bodies]
    picker = FaultPicker()
    assert [picker.pick(config, body) for body in bodies] == first
    fraction_429 = first.count(Fault.RATE_LIMIT) / len(bodies)
    fraction_500 = first.count(Fault.SERVER_ERROR) / len(bodies)
    assert 0.2 < fraction_429 < 0.4
    assert 0.12 < fraction_500 < 0.3  # drawn only when 429 was not: 0.7 * 0.3
    other_seed = SimConfig(rate_429=0.3, rate_500=0.3, seed=4)
    assert [FaultPicker().pick(other_seed, body) for body in bodies] != first
    assert FaultPicker().pick(SimConfig(), b"x") is None
    everything = SimConfig(rate_slow=1.0, rate_malformed=1.0, rate_503=1.0)
    assert FaultPicker().pick(everything, b"x") is Fault.UNAVAILABLE
