"""results_stream while a batch still runs: a subset, each request at most once; all of them
once it ended."""

from __future__ import annotations

import time
from typing import Any

from batchgate.config import single_upstream
from batchgate.sim import SimHandle
from tests.client.conftest import FAST, chat, messages

N = 12


def _partial(results: Any, batch_id: str) -> list[str]:
    """Poll results until some but not all requests have a result."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ids = [r.custom_id for r in results(batch_id, page_size=5)]
        assert len(ids) == len(set(ids))
        if 0 < len(ids) < N:
            return ids
        assert len(ids) < N, "the batch ended before a partial result was seen"
        time.sleep(0.02)
    raise AssertionError("no partial results")


def test_results_while_running_then_all(connect: Any, make_server: Any, sim: SimHandle) -> None:
    sim.configure(latency_ms=120)  # two at a time, 120 ms each: about 0.7 s per batch
    srv = make_server(config=single_upstream(sim.url, concurrency=2, timeout=5.0))
    client = connect(srv.url)

    batch = client.batches.create(chat(N))
    early = _partial(client.batches.results, batch.id)
    assert set(early) <= {f"r{i}" for i in range(N)}
    assert not client.batches.get(batch.id).ended or len(early) < N
    client.batches.wait_for(batch.id, **FAST)
    assert [r.custom_id for r in client.batches.results(batch.id)] == [f"r{i}" for i in range(N)]

    mbatch = client.messages.batches.create(messages(N))
    early = _partial(client.messages.batches.results, mbatch.id)
    assert set(early) <= {f"m{i}" for i in range(N)}
    client.messages.batches.wait_for(mbatch.id, **FAST)
    final = [r.custom_id for r in client.messages.batches.results(mbatch.id)]
    assert final == [f"m{i}" for i in range(N)]
