"""kill -9 and restart: a batch's cost still equals the sum over its rows, each row costed once.

A real ``batchgate serve`` (SQLite) with a priced provider from a config file is SIGKILLed with
rows in flight and restarted on the same data directory; rows sent before the kill but not
recorded are sent again, and only the recorded answer costs anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_crash_resume import Server, completed, query, row_states, wait_batch
from tests.helpers.procs import Procs, chat_lines, submit

pytestmark = pytest.mark.timeout(90)

N = 400
PIN, POUT = 300, 1200  # ticks per token: 0.60 / 2.40 USD per Mtok at half price


def test_cost_after_a_crash_resume_is_the_sum_over_rows(procs: Procs, tmp_path: Path) -> None:
    _, upstream = procs.simulator("--latency-ms", "50", "--jitter-ms", "10")
    config = tmp_path / "batchgate.toml"
    config.write_text(f"""
default = "sim"
[providers.sim]
url = "{upstream}"
concurrency = 16
prices = {{ "*" = {{ input = 0.60, output = 2.40 }} }}
batch_discount = 0.5
""")
    server = Server(procs, tmp_path / "data", "--config", str(config))
    client = server.start()
    batch_id = submit(client, chat_lines(N))
    wait_batch(
        procs, client, batch_id,
        lambda b: completed(b) >= 0.2 * N and row_states(server.db, batch_id).get("leased", 0),
        "20% completed with rows in flight",
    )  # fmt: skip
    server.kill9()
    client.close()
    assert row_states(server.db, batch_id).get("leased", 0) > 0

    client = server.start()
    wait_batch(procs, client, batch_id, lambda b: b.status == "completed", "batch completed")
    raw = client.get(f"/batches/{batch_id}", cast_to=object)
    client.close()
    assert isinstance(raw, dict)
    assert raw["request_counts"] == {"total": N, "completed": N, "failed": 0}
    rows = query(
        server.db, "SELECT input_tokens, output_tokens, cost_ticks FROM requests "
        "WHERE batch_id = ?", batch_id,
    )  # fmt: skip
    assert len(rows) == N
    assert all(cost == inp * PIN + out * POUT for inp, out, cost in rows)
    total = sum(cost for _, _, cost in rows)
    ((stored, unpriced),) = query(
        server.db, "SELECT cost_ticks, unpriced FROM batches WHERE id = ?", batch_id
    )
    assert stored == total and unpriced == 0
    assert raw["cost"]["ticks"] == total and raw["cost"]["priced"] is True
    usage = raw["usage"]
    assert total == usage["input_tokens"] * PIN + usage["output_tokens"] * POUT
