"""What ``batchgate run`` relies on, in-process: the SqlStore reads and writes it added (on SQLite
and PostgreSQL), its state directory (lock, input fingerprint, refusals) and its resume hint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchgate import ids
from batchgate.cli.run import first_url, resume_command
from batchgate.cli.runstate import RunState, fingerprint
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus
from batchgate.errors import BatchgateError, ConfigError
from batchgate.storage.sql import SqlStore, open_store
from batchgate.storage.types import IngestRow, RowResult
from tests.helpers.procs import chat_lines


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    yield s
    s.close()


def _batch_with_rows(store: SqlStore, n: int) -> str:
    bid, now = ids.batch_id(), int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": "", "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
        "created_at": now, "expires_at": now + 86400, "total": n,
    }))  # fmt: skip
    rows = [IngestRow(i, f"c{i}", "queued", "up", "m", b"{}", 1) for i in range(1, n + 1)]
    store.insert_rows(bid, rows, time.time())
    return bid


def test_release_all_leases_requeues_live_leases_and_frees_claims(store: SqlStore) -> None:
    bid = _batch_with_rows(store, 5)
    leased = store.lease([bid], "up", 3, owner="dead", token="t", now=time.time(), ttl=3600)
    assert len(leased) == 3
    assert store.claim_finalizable("claim", time.time(), 3600) is None  # rows still open
    assert store.claim_batch([BatchStatus.IN_PROGRESS], "claim", time.time(), 3600) is not None
    assert store.reclaim_expired_leases(time.time()) == 0  # not expired: the server would wait

    assert store.release_all_leases(time.time()) == (3, 1)
    assert store.count_rows(bid) == {"queued": 5}
    batch = store.get_batch(bid)
    assert batch is not None and batch.claim_token is None
    again = store.lease([bid], "up", 5, owner="new", token="t2", now=time.time(), ttl=30)
    assert len(again) == 5, "released rows are due at once"


def test_count_retrying_counts_queued_rows_that_wait_for_a_retry(store: SqlStore) -> None:
    bid = _batch_with_rows(store, 4)
    leased = store.lease([bid], "up", 3, owner="w", token="t", now=time.time(), ttl=30)
    retry = [
        RowResult(r.batch_id, r.line, r.lease_token, "queued", status_code=429,
                  error_code="retrying", next_attempt_at=time.time() + 60)
        for r in leased[:2]
    ]  # fmt: skip
    store.record(retry, time.time())
    assert store.count_retrying(bid) == 2
    store.release_all_leases(time.time())  # the third was leased, never failed: not retrying
    assert store.count_retrying(bid) == 2


def test_a_second_holder_of_the_lock_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    first, second = RunState(tmp_path / "s"), RunState(tmp_path / "s")
    with (
        first.locked(),
        pytest.raises(BatchgateError, match=r"Another batchgate run \(pid \d+\)"),
        second.locked(),
    ):
        pass
    with second.locked():  # released with the first
        pass


def test_state_belongs_to_one_input_until_fresh(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(chat_lines(3))
    b.write_bytes(chat_lines(4))
    state = RunState(tmp_path / "s")
    with state.locked():
        state.adopt(fingerprint(a), ["default"], fresh=False)
        (state.path / "batchgate.db").write_bytes(b"x")
        state.adopt(fingerprint(a), ["default"], fresh=False)  # the same input: resume
        with pytest.raises(BatchgateError, match=r"different input.*--fresh"):
            state.adopt(fingerprint(b), ["default"], fresh=False)
        state.adopt(fingerprint(b), ["default"], fresh=True)
        assert not (state.path / "batchgate.db").exists(), "--fresh kept the old store"
        manifest = state.manifest()
        assert manifest is not None and manifest["input"]["bytes"] == b.stat().st_size
        with pytest.raises(ConfigError, match=r"upstream.*default"):
            state.check_upstreams(["other"])


def test_a_directory_that_is_not_a_run_state_is_never_touched(tmp_path: Path) -> None:
    data = tmp_path / "server-data"
    data.mkdir()
    (data / "batchgate.db").write_bytes(b"a server's database")
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(1))
    state = RunState(data)
    with state.locked():
        for fresh in (False, True):
            with pytest.raises(BatchgateError, match="not the state directory"):
                state.adopt(fingerprint(src), ["default"], fresh=fresh)
    assert (data / "batchgate.db").read_bytes() == b"a server's database"


def test_the_endpoint_comes_from_the_first_line(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    cases = {
        b'\xef\xbb\xbf\n{"url": "/v1/embeddings"}\n': "/v1/embeddings",
        b'{"url": "/v1/responses"}': "/v1/responses",
        b'{"url": "/v1/unknown"}\n': "/v1/chat/completions",
        b"not json\n": "/v1/chat/completions",
        b"": "/v1/chat/completions",
    }
    for data, endpoint in cases.items():
        src.write_bytes(data)
        assert first_url(src) == endpoint, data


def test_the_resume_command_is_the_same_command_without_fresh() -> None:
    argv = ("run", "my input.jsonl", "-o", "out.jsonl", "--fresh", "--upstream", "http://h/v1")
    assert resume_command(argv) == (
        "batchgate run 'my input.jsonl' -o out.jsonl --upstream http://h/v1"
    )


def test_a_moved_upstream_is_reported_once_and_remembered(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(1))
    state = RunState(tmp_path / "s")
    with state.locked():
        state.adopt(fingerprint(src), ["a", "b"], fresh=False, urls={"a": "http://x/v1", "b": "u"})
        assert state.moved_upstreams({"a": "http://x/v1", "b": "u"}) == []
        assert state.moved_upstreams({"a": "http://y/v1", "b": "u"}) == [
            ("a", "http://x/v1", "http://y/v1")
        ]
        assert state.moved_upstreams({"a": "http://y/v1", "b": "u"}) == []
        manifest = state.manifest()
        assert manifest is not None and manifest["upstreams"] == ["a", "b"]
        # A state from before URLs were kept learns them without a report.
        state.adopt(fingerprint(src), ["a"], fresh=True)
        assert state.moved_upstreams({"a": "http://z/v1"}) == []
        assert state.moved_upstreams({"a": "http://w/v1"}) == [("a", "http://z/v1", "http://w/v1")]
