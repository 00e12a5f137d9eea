"""Every SDK method against a live server on a real socket, for Client and AsyncClient."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from batchgate.client import (
    BadRequestError,
    Batch,
    BatchResult,
    ConflictError,
    File,
    MessageBatch,
    MessageBatchResult,
    NotFoundError,
)
from batchgate.sim import SimHandle
from tests.client.conftest import FAST, chat, messages
from tests.helpers.servers import ServerHandle


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


# -- files -------------------------------------------------------------------------------------


def test_files_upload_every_kind_of_source(client: Any, tmp_path: Path) -> None:
    lines = chat(3, method="POST", url="/v1/chat/completions")
    path = tmp_path / "requests.jsonl"
    path.write_bytes(_jsonl(lines))

    from_path = client.files.create(path)
    from_str = client.files.create(str(path), filename="renamed.jsonl")
    from_bytes = client.files.create(_jsonl(lines))
    from_stream = client.files.create(io.BytesIO(_jsonl(lines)), purpose="user_data")
    from_dicts = client.files.create(iter(lines))

    assert isinstance(from_path, File)
    assert (from_path.filename, from_path.purpose, from_path.status) == (
        "requests.jsonl", "batch", "processed",
    )  # fmt: skip
    assert from_str.filename == "renamed.jsonl"
    assert from_bytes.filename == "upload"
    assert from_stream.purpose == "user_data"
    assert from_path.bytes == path.stat().st_size
    assert from_path.raw["object"] == "file"
    expected = [json.loads(line) for line in path.read_bytes().splitlines()]
    for f in (from_path, from_str, from_bytes, from_stream, from_dicts):
        content = client.files.content(f.id)
        assert [json.loads(line) for line in content.splitlines()] == expected
    assert b"".join(client.files.content_stream(from_path.id)) == path.read_bytes()


def test_content_stream_arrives_in_chunks(client: Any) -> None:
    data = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 200) for i in range(5000))
    f = client.files.create(data, purpose="user_data")
    chunks = list(client.files.content_stream(f.id))
    assert len(chunks) > 1 and b"".join(chunks) == data


def test_files_get_list_list_all_delete(client: Any) -> None:
    made = [client.files.create(f"line {i}\n".encode(), filename=f"f{i}.jsonl") for i in range(5)]
    ids = {f.id for f in made}

    assert client.files.get(made[0].id) == made[0]
    page = client.files.list(limit=2, order="asc", purpose="batch")
    assert [f.id for f in page.data] == [made[0].id, made[1].id]
    assert page.has_more and page.last_id == made[1].id and page.first_id == made[0].id
    rest = client.files.list(after=page.last_id, order="asc")
    assert [f.id for f in rest.data] == [f.id for f in made[2:]]

    every = [f.id for f in client.files.list_all(limit=2, order="asc")]
    assert every == [f.id for f in made]
    assert {f.id for f in client.files.list_all(purpose="batch", limit=3)} == ids

    gone = client.files.delete(made[0].id)
    assert (gone.id, gone.deleted) == (made[0].id, True)
    with pytest.raises(NotFoundError):
        client.files.get(made[0].id)
    assert made[0].id not in {f.id for f in client.files.list_all()}


# -- OpenAI batches ----------------------------------------------------------------------------


def test_batch_create_wait_results_delete(client: Any, server: ServerHandle) -> None:
    seen: list[Batch] = []
    batch = client.batches.create(chat(5), metadata={"job": "nightly"})
    assert isinstance(batch, Batch)
    assert (batch.endpoint, batch.completion_window, batch.metadata) == (
        "/v1/chat/completions", "24h", {"job": "nightly"},
    )  # fmt: skip
    uploaded = client.files.content(batch.input_file_id).splitlines()
    assert json.loads(uploaded[0])["method"] == "POST"
    assert json.loads(uploaded[0])["url"] == "/v1/chat/completions"

    done = client.batches.wait_for(batch.id, on_progress=seen.append, **FAST)
    assert done.ended and done.status == "completed"
    assert done.counts.total == 5 and done.counts.succeeded == 5 and done.counts.failed == 0
    assert done.usage is not None and done.usage.total_tokens > 0
    assert seen and seen[-1] == done and all(not b.ended for b in seen[:-1])

    results = client.batches.results(batch.id)
    assert [r.custom_id for r in results] == [f"r{i}" for i in range(5)]
    assert all(isinstance(r, BatchResult) and r.ok and r.error is None for r in results)
    assert results[0].body["object"] == "chat.completion"
    paged = list(client.batches.results_stream(batch.id, page_size=2))
    assert paged == results
    output = client.files.content(done.output_file_id).splitlines()
    assert sorted(json.loads(x)["custom_id"] for x in output) == [r.custom_id for r in results]

    assert client.batches.get(batch.id) == done
    assert batch.id in {b.id for b in client.batches.list().data}
    gone = client.batches.delete(batch.id)
    assert (gone.id, gone.deleted) == (batch.id, True)
    with pytest.raises(NotFoundError):
        client.batches.get(batch.id)


def test_batch_from_a_path_or_an_uploaded_file(client: Any, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl(chat(3, "p", method="POST", url="/v1/chat/completions")))
    from_path = client.batches.create(path)
    uploaded = client.files.create(path)
    from_id = client.batches.create(input_file_id=uploaded.id)
    assert from_id.input_file_id == uploaded.id
    assert client.files.get(from_path.input_file_id).filename == "in.jsonl"
    for batch in (from_path, from_id):
        client.batches.wait_for(batch.id, **FAST)
        assert [r.custom_id for r in client.batches.results(batch.id)] == ["p0", "p1", "p2"]


def test_batch_needs_exactly_one_source(client: Any) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.batches.create()
    with pytest.raises(ValueError, match="exactly one"):
        client.batches.create(chat(1), input_file_id="file-x")


def test_failed_lines_arrive_as_error_results(client: Any) -> None:
    lines = chat(2)
    lines[1]["body"]["model"] = "fail-model"  # the simulator's non-retryable 400
    batch = client.batches.wait_for(client.batches.create(lines).id, **FAST)
    assert batch.status == "completed" and batch.counts.failed == 1
    good, bad = client.batches.results(batch.id)
    assert good.ok and not bad.ok
    assert bad.status_code == 400 or bad.error is not None


def test_cancel_both_dialects(connect: Any, make_server: Any) -> None:
    srv = make_server(worker=False)  # nothing runs: the batches stay cancellable
    client = connect(srv.url)
    batch = client.batches.cancel(client.batches.create(chat(2)).id)
    assert batch.status == "cancelling" and batch.cancelling_at is not None
    mbatch = client.messages.batches.cancel(client.messages.batches.create(messages(2)).id)
    assert mbatch.processing_status == "canceling" and mbatch.cancel_initiated_at is not None


def test_retry_both_dialects(client: Any, sim: SimHandle) -> None:
    """``retry`` makes a new batch of the failed requests; the simulator fails ``fail-``
    models until told otherwise."""
    lines = chat(3)
    lines[1]["body"]["model"] = "fail-x"
    batch = client.batches.wait_for(client.batches.create(lines).id, **FAST)
    params = messages(2)
    params[0]["params"]["model"] = "fail-y"
    mbatch = client.messages.batches.wait_for(client.messages.batches.create(params).id, **FAST)
    assert (batch.counts.failed, mbatch.counts.failed) == (1, 1)
    with pytest.raises(BadRequestError, match="no failed requests with error code nope"):
        client.batches.retry(batch.id, error_codes="nope")  # one code as a string

    sim.configure(fail_model_prefix="")
    again = client.batches.retry(batch.id)
    assert isinstance(again, Batch) and again.metadata == {"retry_of": batch.id}
    assert again.raw["budget"] is None
    with pytest.raises(ConflictError, match=f"already retried as {again.id}"):
        client.batches.retry(batch.id)
    done = client.batches.wait_for(again.id, **FAST)
    assert [r.custom_id for r in client.batches.results(done.id)] == ["r1"]
    assert done.counts.succeeded == done.counts.total == 1
    mgain = client.messages.batches.retry(mbatch.id, budget_usd="1.5")
    assert isinstance(mgain, MessageBatch) and mgain.raw["retry_of"] == mbatch.id
    assert mgain.raw["budget"]["ticks"] == 1_500_000_000
    mdone = client.messages.batches.wait_for(mgain.id, **FAST)
    assert [r.custom_id for r in client.messages.batches.results(mdone.id)] == ["m0"]


# -- Anthropic message batches -----------------------------------------------------------------


def test_message_batch_create_wait_results_delete(client: Any) -> None:
    seen: list[MessageBatch] = []
    batch = client.messages.batches.create(messages(4))
    assert isinstance(batch, MessageBatch)
    assert batch.processing_status == "in_progress" and batch.created_at is not None
    assert batch.results_url is None

    done = client.messages.batches.wait_for(batch.id, on_progress=seen.append, **FAST)
    assert done.ended and done.ended_at is not None and done.results_url
    assert done.counts.total == 4 and done.request_counts.succeeded == 4
    assert seen[-1] == done

    results = client.messages.batches.results(batch.id)
    assert [r.custom_id for r in results] == ["m0", "m1", "m2", "m3"]
    assert all(isinstance(r, MessageBatchResult) and r.ok for r in results)
    assert results[0].message is not None and results[0].message["type"] == "message"
    assert list(client.messages.batches.results_stream(batch.id, page_size=3)) == results

    assert client.messages.batches.get(batch.id) == done
    assert batch.id in {b.id for b in client.messages.batches.list(limit=5).data}
    gone = client.messages.batches.delete(batch.id)
    assert (gone.id, gone.deleted) == (batch.id, True)
    with pytest.raises(NotFoundError):
        client.messages.batches.get(batch.id)


def test_message_batch_from_a_jsonl_path(client: Any, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(_jsonl(messages(3, "j")).replace(b"\n", b"\r\n\n"))  # CRLF, blank lines
    batch = client.messages.batches.wait_for(client.messages.batches.create(path).id, **FAST)
    assert batch.counts.succeeded == 3
    assert [r.custom_id for r in client.messages.batches.results(batch.id)] == ["j0", "j1", "j2"]


def test_message_batch_errored_results(client: Any) -> None:
    reqs = messages(2)
    reqs[1]["params"]["model"] = "fail-model"
    batch = client.messages.batches.wait_for(client.messages.batches.create(reqs).id, **FAST)
    assert batch.request_counts.errored == 1 and batch.counts.failed == 1
    good, bad = client.messages.batches.results(batch.id)
    assert good.ok and not bad.ok and bad.type == "errored"
    assert bad.error is not None and bad.error.message


# -- list_all across pages ---------------------------------------------------------------------


def test_list_all_pages_through_every_batch(connect: Any, make_server: Any) -> None:
    client = connect(make_server(worker=False).url)
    made = [client.batches.create(chat(1)).id for _ in range(5)]
    mmade = [client.messages.batches.create(messages(1)).id for _ in range(5)]

    listed = [b.id for b in client.batches.list_all(limit=2)]
    assert sorted(listed) == sorted(made) and len(listed) == 5
    assert client.batches.list(limit=2).has_more

    mlisted = [b.id for b in client.messages.batches.list_all(limit=2)]
    assert sorted(mlisted) == sorted(mmade) and len(mlisted) == 5
    newest_first = mlisted
    older = [b.id for b in client.messages.batches.list_all(limit=2, after_id=newest_first[1])]
    assert older == newest_first[2:]
    newer = [b.id for b in client.messages.batches.list_all(limit=1, before_id=newest_first[3])]
    assert sorted(newer) == sorted(newest_first[:3])
