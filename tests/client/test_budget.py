"""``budget_usd`` through the SDK, for Client and AsyncClient: both dialects' creates send it,
and a reached budget shows in the batch and as ``budget_exceeded`` results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchgate.sim import SimHandle
from tests.api.test_cost import priced_config
from tests.client.conftest import FAST, chat, messages
from tests.helpers.servers import ServerHandle


def test_both_creates_take_a_budget(
    connect: Callable[..., Any], make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    client = connect(make_server(config=priced_config(sim)).url)
    stopped = client.batches.create(chat(3), budget_usd=0)
    assert stopped.raw["budget"] == {"ticks": 0, "usd": "0.000000000", "reached": True}
    done = client.batches.wait_for(stopped.id, **FAST)
    assert done.counts.failed == 3
    results = client.batches.results(stopped.id)
    assert {r.error.code for r in results if r.error} == {"budget_exceeded"}

    roomy = client.batches.create(chat(3), budget_usd="1.50")
    assert roomy.raw["budget"]["usd"] == "1.500000000"
    assert client.batches.wait_for(roomy.id, **FAST).counts.succeeded == 3

    msgs = client.messages.batches.create(messages(2), budget_usd="0")
    assert msgs.raw["budget"]["ticks"] == 0
    client.messages.batches.wait_for(msgs.id, **FAST)
    got = client.messages.batches.results(msgs.id)
    assert [(r.type, r.error.code if r.error else None) for r in got] == [
        ("errored", "billing_error"), ("errored", "billing_error"),
    ]  # fmt: skip
    assert sim.stats()["requests"] == 3  # only the roomy batch was sent
