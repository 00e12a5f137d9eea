"""kill -9 of ``batchgate serve`` in the middle of an Anthropic Message Batch, then a restart on
the same data directory: ``results()`` holds every custom_id exactly once, all succeeded.

Real processes on real sockets (``batchgate simulate`` and ``batchgate serve``); the batch is
created and read with the official anthropic SDK.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.helpers.procs import Proc, Procs

pytestmark = pytest.mark.timeout(60)

N = 800


def client_for(proc: Proc) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{proc.port}", api_key="k", max_retries=0, timeout=30.0
    )


def row_states(db: Path, batch_id: str) -> dict[str, int]:
    """The batch's rows by state, read from the server's SQLite database directly."""
    with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        rows = conn.execute(
            "SELECT state, COUNT(*) FROM requests WHERE batch_id = ? GROUP BY 1", (batch_id,)
        ).fetchall()
    return {str(s): int(n) for s, n in rows}


def upstream_args(procs: Procs, tmp_path: Path, upstream: str, path: str) -> tuple[str, ...]:
    """``translated``: the simulator as an OpenAI-compatible upstream; ``native``: as an
    Anthropic-format one (``kind = "anthropic"`` in a config file)."""
    if path == "translated":
        return ("--upstream", upstream, "--concurrency", "8")
    cfg = tmp_path / "batchgate.toml"
    cfg.write_text(
        f'default = "claude"\n[upstreams.claude]\nurl = "{upstream}"\nkind = "anthropic"\n'
        "concurrency = 8\n"
    )
    return ("--config", str(cfg))


@pytest.mark.parametrize("path", ["translated", "native"])
def test_kill9_mid_message_batch_then_restart_gives_every_result_once(
    path: str, procs: Procs, tmp_path: Path
) -> None:
    _, upstream = procs.simulator("--latency-ms", "20", "--jitter-ms", "5")
    data = tmp_path / "data"
    args = (
        "--data-dir", str(data), *upstream_args(procs, tmp_path, upstream, path),
        "--lease-ttl", "2", "--log-level", "info",
    )  # fmt: skip
    db = data / "batchgate.db"

    server = procs.serve(*args)
    client = client_for(server)
    requests: list[Any] = [
        {"custom_id": f"req-{i}", "params": {
            "model": "sim-model", "max_tokens": 16,
            "messages": [{"role": "user", "content": f"hello {i}"}],
        }}
        for i in range(N)
    ]  # fmt: skip
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == N

    def in_flight_after_some() -> Any:
        b = client.messages.batches.retrieve(batch.id)
        if b.processing_status == "ended":
            raise procs.fail(f"batch ended before the kill: {b}")
        if b.request_counts.succeeded >= 0.15 * N and row_states(db, batch.id).get("leased"):
            return b
        return None

    procs.wait_until(in_flight_after_some, "15% succeeded with rows leased", 30.0)
    server.kill9()
    client.close()
    # What the dead server left: rows it held (leased) and so work not done yet.
    states = row_states(db, batch.id)
    assert states.get("leased", 0) > 0, f"no row was in flight at the kill: {states}"
    assert 0.15 * N <= states.get("succeeded", 0) < N, states

    server = procs.serve(*args)  # same data dir, new port
    client = client_for(server)

    def ended() -> Any:
        b = client.messages.batches.retrieve(batch.id)
        return b if b.processing_status == "ended" else None

    done = procs.wait_until(ended, "batch ended after the restart", 30.0, server, interval=0.05)
    assert done.request_counts.model_dump() == {
        "processing": 0, "succeeded": N, "errored": 0, "canceled": 0, "expired": 0,
    }  # fmt: skip
    assert (
        done.results_url == f"http://127.0.0.1:{server.port}/v1/messages/batches/{batch.id}/results"
    )
    results = list(client.messages.batches.results(batch.id))
    ids = Counter(r.custom_id for r in results)
    dups = [k for k, n in ids.items() if n > 1]
    assert not dups, f"custom_ids returned more than once: {dups[:10]} ({len(dups)} in all)"
    assert set(ids) == {f"req-{i}" for i in range(N)}
    assert len(results) == N
    for r in results:
        assert r.result.type == "succeeded", r
        assert f"hello {r.custom_id[4:]}" in r.result.message.content[0].text  # type: ignore[union-attr]
    assert row_states(db, batch.id) == {"succeeded": N}
    client.close()
