"""The whole path once, on both backends: upload → batch → output, with the official SDK."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.helpers.servers import ServerHandle


def _lines(n: int) -> bytes:
    return "\n".join(
        json.dumps({
            "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"hi {i}"}]},
        })
        for i in range(n)
    ).encode()  # fmt: skip


def test_batch_runs_end_to_end(db_url: str, make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server(db_url)
    client = srv.openai()
    f = client.files.create(file=("in.jsonl", _lines(50)), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    srv.wait_for(batch.id)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (50, 50)
    assert batch.error_file_id is None
    assert batch.output_file_id is not None
    out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert [o["custom_id"] for o in out] == [f"r{i}" for i in range(50)]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in out)
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(
        o["response"]["body"]["usage"]["prompt_tokens"] for o in out
    )
