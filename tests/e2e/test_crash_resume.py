"""kill -9 and restart on SQLite: a batch survives crashes of ``batchgate serve`` at any step.

Real processes on real sockets: the simulator (``batchgate simulate``) and ``batchgate serve``
with its in-process worker. The server is SIGKILLed while rows are in flight (once or several
times), while it validates the input file and while it writes the output files; restarted on the
same data directory, it must finish the batch with every custom_id exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers.procs import (
    TERMINAL,
    Proc,
    Procs,
    chat_lines,
    read_results,
    sdk,
    submit,
)

pytestmark = pytest.mark.timeout(120)

N = 1500
LEASE_TTL = "2"


class Server:
    """One ``batchgate serve`` command line, started (and restarted) on the same data dir."""

    def __init__(self, procs: Procs, data_dir: Path, *upstream_args: str) -> None:
        self.procs, self.data_dir = procs, data_dir
        self.args = (
            "--data-dir", str(data_dir), *upstream_args, "--lease-ttl", LEASE_TTL,
            "--log-level", "info",
        )  # fmt: skip
        self.proc: Proc | None = None

    @property
    def db(self) -> Path:
        return self.data_dir / "batchgate.db"

    def start(self) -> openai.OpenAI:
        """Start (or restart) the server, on a fresh port each time; a client for it."""
        self.proc = self.procs.serve(*self.args)
        assert self.proc.port is not None
        return sdk(self.proc.port)

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.alive()
        self.proc.kill9()


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the server's SQLite database directly (a fresh connection, closed at once)."""
    with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        return conn.execute(sql, params).fetchall()


def row_states(db: Path, batch_id: str) -> dict[str, int]:
    rows = query(db, "SELECT state, COUNT(*) FROM requests WHERE batch_id = ? GROUP BY 1", batch_id)
    return {str(s): int(n) for s, n in rows}


def wait_batch(
    procs: Procs, client: openai.OpenAI, batch_id: str, until: Callable[[Any], bool],
    what: str, timeout: float = 30.0,
) -> Any:  # fmt: skip
    """Poll the batch through the API until ``until(batch)``; fail if it ends first."""

    def check() -> Any:
        batch = client.batches.retrieve(batch_id)
        if until(batch):
            return batch
        if batch.status in TERMINAL:
            raise procs.fail(f"batch ended {batch.status} before: {what} ({batch})")
        return None

    return procs.wait_until(check, what, timeout, interval=0.02)


def completed(batch: Any) -> int:
    return int(batch.request_counts.completed) if batch.request_counts else 0


def assert_exactly_once(results: Any, expected: list[str]) -> None:
    ids = results.custom_ids
    dups = [k for k, n in Counter(ids).items() if n > 1]
    assert not dups, f"custom_ids written more than once: {dups[:10]} ({len(dups)} in all)"
    missing = set(expected) - set(ids)
    assert not missing, f"custom_ids missing: {sorted(missing)[:10]} ({len(missing)} in all)"
    assert len(ids) == len(expected), f"{len(ids)} result lines for {len(expected)} requests"


def start_sim(procs: Procs) -> str:
    _, upstream = procs.simulator("--latency-ms", "20", "--jitter-ms", "10")
    return upstream


def kill_at_progress(
    procs: Procs, server: Server, client: openai.OpenAI, batch_id: str, low: float, high: float
) -> int:
    """Wait until between ``low`` and ``high`` of the rows are done while the server holds
    leased rows, then SIGKILL it and check that it died holding them (work was in flight)."""
    batch = wait_batch(
        procs, client, batch_id,
        lambda b: completed(b) >= low * N and row_states(server.db, batch_id).get("leased", 0) > 0,
        f"{low:.0%} completed with rows in flight",
    )  # fmt: skip
    server.kill9()
    done = completed(batch)
    assert done <= high * N, f"too late to kill: {done}/{N} were already completed"
    states = row_states(server.db, batch_id)
    assert states.get("leased", 0) > 0, f"no row was in flight at the kill: {states}"
    return done


def finish_and_check(procs: Procs, server: Server, batch_id: str) -> Any:
    """Restart the server on the same data dir; the batch must complete exactly once."""
    client = server.start()
    batch = wait_batch(
        procs, client, batch_id, lambda b: b.status == "completed", "batch completed"
    )
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (N, N)
    assert batch.request_counts.failed == 0
    results = read_results(client, batch)
    assert_exactly_once(results, [f"req-{i}" for i in range(N)])
    assert len(results.output) == N and not results.errors, results.errors[:3]
    assert all(r["response"]["status_code"] == 200 for r in results.output)
    assert [r["custom_id"] for r in results.output] == [f"req-{i}" for i in range(N)]
    assert row_states(server.db, batch_id) == {"succeeded": N}
    client.close()
    return batch


def test_kill9_mid_batch_then_restart_completes_exactly_once(procs: Procs, tmp_path: Path) -> None:
    upstream = start_sim(procs)
    server = Server(procs, tmp_path / "data", "--upstream", upstream, "--concurrency", "32")
    client = server.start()
    batch_id = submit(client, chat_lines(N))
    kill_at_progress(procs, server, client, batch_id, 0.2, 0.7)
    client.close()
    finish_and_check(procs, server, batch_id)


def test_three_kills_at_different_progress_then_exactly_once(procs: Procs, tmp_path: Path) -> None:
    upstream = start_sim(procs)
    server = Server(procs, tmp_path / "data", "--upstream", upstream, "--concurrency", "32")
    client = server.start()
    batch_id = submit(client, chat_lines(N))
    seen: list[int] = []
    for low, high in ((0.1, 0.45), (0.4, 0.75), (0.7, 0.97)):
        if seen:  # restart after the kill before (the last restart is finish_and_check's: one
            client.close()  # server at a time on a data directory)
            client = server.start()
        done = kill_at_progress(procs, server, client, batch_id, low, high)
        assert not seen or done >= seen[-1], "progress went backwards across a restart"
        seen.append(done)
    client.close()
    finish_and_check(procs, server, batch_id)


# -- kills during validation and finalization ----------------------------------------------------
#
# A few hundred routable lines plus many lines for a model no upstream serves: those fail at
# validation without being sent, so the file is big enough for validation (~0.5 s) and
# finalization (~0.2 s) to be caught in the act by polling the database, yet the batch is quick.

ROUTED, UNROUTED = 300, 20_000


def _config(tmp_path: Path, upstream: str) -> Path:
    cfg = tmp_path / "batchgate.toml"
    cfg.write_text(
        f'[upstreams.sim]\nurl = "{upstream}"\nconcurrency = 32\nmodels = ["sim-model"]\n'
    )
    return cfg


def _mixed_file() -> bytes:
    return chat_lines(ROUTED) + chat_lines(UNROUTED, model="no-such-model", prefix="unrouted")


def _kill_when(
    procs: Procs, server: Server, batch_id: str, trigger: str, missed: str, what: str
) -> None:
    """Poll the database every ~2 ms until ``trigger`` (one row, one truthy value) holds for
    the batch, or ``missed`` does (the step is over: too late), then SIGKILL the server."""
    with closing(sqlite3.connect(server.db, timeout=10, isolation_level=None)) as conn:
        deadline = time.monotonic() + 30.0
        while not conn.execute(trigger, (batch_id,)).fetchone()[0]:
            if conn.execute(missed, (batch_id,)).fetchone()[0]:
                break
            if time.monotonic() > deadline or not (server.proc and server.proc.alive()):
                raise procs.fail(f"server died or timed out waiting for: {what}")
            time.sleep(0.002)
    server.kill9()


def _kill_in_the_act(
    procs: Procs, server: Server, *, trigger: str, missed: str, landed: str, what: str
) -> str:
    """Start the server, submit the mixed batch and SIGKILL the server once ``trigger`` holds;
    return the batch id if ``landed`` holds after the kill (the step really was cut short).
    A kill that came too late (a loaded machine can miss a window of a few hundred ms) is
    retried with a new batch, at most 3 times; the late batches just finish after the restart."""
    for _ in range(3):
        client = server.start()
        batch_id = submit(client, _mixed_file())
        client.close()
        _kill_when(procs, server, batch_id, trigger, missed, what)
        if query(server.db, landed, batch_id)[0][0]:
            return batch_id
    raise procs.fail(f"3 kills in a row came too late to interrupt: {what}")


def _check_mixed(procs: Procs, server: Server, batch_id: str) -> None:
    client = server.start()
    batch = wait_batch(
        procs, client, batch_id, lambda b: b.status == "completed", "batch completed"
    )
    assert batch.request_counts is not None
    total = ROUTED + UNROUTED
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (total, ROUTED, UNROUTED)
    results = read_results(client, batch)
    expected = [f"req-{i}" for i in range(ROUTED)] + [f"unrouted-{i}" for i in range(UNROUTED)]
    assert_exactly_once(results, expected)
    assert [r["custom_id"] for r in results.output] == expected[:ROUTED]
    assert all(r["response"]["status_code"] == 200 for r in results.output)
    assert {r["error"]["code"] for r in results.errors} == {"model_not_found"}
    files = query(
        server.db,
        "SELECT filename FROM files WHERE purpose = 'batch_output' AND filename LIKE ? || '%'",
        batch_id,
    )
    assert sorted(files) == [(f"{batch_id}_error.jsonl",), (f"{batch_id}_output.jsonl",)]
    client.close()


def test_kill9_during_validation_restarts_validation(procs: Procs, tmp_path: Path) -> None:
    upstream = start_sim(procs)
    server = Server(procs, tmp_path / "data", "--config", str(_config(tmp_path, upstream)))
    # Killed once some chunks of rows are in, before the batch started.
    batch_id = _kill_in_the_act(
        procs, server,
        trigger="SELECT (SELECT status FROM batches WHERE id = ?1) = 'validating' AND "
        "(SELECT COUNT(*) FROM requests WHERE batch_id = ?1) >= 2000",
        missed="SELECT status != 'validating' FROM batches WHERE id = ?",
        landed="SELECT status = 'validating' FROM batches WHERE id = ?",
        what="validation half-way",
    )  # fmt: skip
    rows = sum(row_states(server.db, batch_id).values())
    assert rows >= 2000, f"{rows} rows left by the half-done validation"
    _check_mixed(procs, server, batch_id)


def test_kill9_during_finalization_refinalizes(procs: Procs, tmp_path: Path) -> None:
    upstream = start_sim(procs)
    server = Server(procs, tmp_path / "data", "--config", str(_config(tmp_path, upstream)))
    batch_id = _kill_in_the_act(
        procs, server,
        trigger="SELECT status = 'finalizing' FROM batches WHERE id = ?",
        missed="SELECT status = 'completed' FROM batches WHERE id = ?",
        landed="SELECT status = 'finalizing' AND output_file_id IS NULL FROM batches WHERE id = ?",
        what="finalization",
    )  # fmt: skip
    _check_mixed(procs, server, batch_id)
