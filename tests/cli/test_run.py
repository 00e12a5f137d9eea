"""``batchgate run``: real processes (the command and ``batchgate simulate``) on real sockets.

A full run, the ``--errors`` split, a SIGKILL midway then a re-run (only what was in flight is
sent again), injected upstream faults, Ctrl-C and resume, and the refusals (bad input, another
input on the same state, no upstream, a second run on the same state).
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.procs import Proc, Procs, batchgate_argv, chat_lines, priced_config_file

pytestmark = pytest.mark.timeout(60)

COUNTS = re.compile(r"requests\s+(\d+): (\d+) succeeded, (\d+) failed")


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str


def start_run(procs: Procs, *args: str) -> Proc:
    return procs.spawn("run", batchgate_argv("run", *args))


def finish(procs: Procs, proc: Proc, timeout: float = 40.0) -> Done:
    try:
        rc = proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise procs.fail(f"batchgate run did not end within {timeout}s") from None
    return Done(rc, proc.stdout_path.read_text(), proc.stderr_path.read_text())


def run(procs: Procs, *args: str, timeout: float = 40.0) -> Done:
    return finish(procs, start_run(procs, *args), timeout)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def sim_requests(upstream: str) -> int:
    stats = httpx.get(upstream.removesuffix("/v1") + "/_sim/stats", timeout=5).json()
    return int(stats["requests"])


def recorded(db: Path) -> int:
    """Rows the run has recorded so far, read from its state store (0 before it exists)."""
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        try:
            row = conn.execute("SELECT completed + failed FROM batches").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0
    return int(row[0]) if row else 0


def assert_lines_in_order(out: list[dict[str, Any]], expected: list[str]) -> None:
    ids = [r["custom_id"] for r in out]
    dups = [k for k, n in Counter(ids).items() if n > 1]
    assert not dups, f"custom_ids written more than once: {dups[:10]}"
    assert ids == expected, f"{len(ids)} lines, missing {sorted(set(expected) - set(ids))[:10]}"


def assert_output_line(r: dict[str, Any]) -> None:
    """One line of the OpenAI batch output format."""
    assert set(r) == {"id", "custom_id", "response", "error"}, r
    assert r["id"].startswith("batch_req_")
    if r["error"] is None:
        assert set(r["response"]) == {"status_code", "request_id", "body"}
        assert isinstance(r["response"]["body"], dict)
    else:
        assert r["response"] is None and {"code", "message"} <= set(r["error"])


def summary_counts(stdout: str) -> tuple[int, int, int]:
    m = COUNTS.search(stdout)
    assert m, f"no summary in: {stdout!r}"
    return int(m[1]), int(m[2]), int(m[3])


def mixed_input(n: int, failing: int) -> tuple[bytes, list[str]]:
    """``n`` chat lines with ``failing`` lines for a ``fail-`` model (a 400) spread among them."""
    good = chat_lines(n).decode().splitlines(keepends=True)
    bad = chat_lines(failing, model="fail-model", prefix="bad").decode().splitlines(keepends=True)
    step = n // failing
    merged: list[str] = []
    for i, line in enumerate(good):
        merged.append(line)
        if i % step == step - 1 and bad:
            merged.append(bad.pop(0))
    merged += bad
    return "".join(merged).encode(), [json.loads(x)["custom_id"] for x in merged]


# -- (a) a full run, the --errors split, and a different input on the same state -------------------


def test_full_run_then_errors_split_then_other_input(procs: Procs, tmp_path: Path) -> None:
    _, upstream = procs.simulator()
    data, expected = mixed_input(300, 6)
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    out = tmp_path / "out" / "all.jsonl"

    done = run(procs, str(src), "-o", str(out), "--upstream", upstream, "--concurrency", "16")
    assert done.rc == 3, procs.logs()  # completed, some lines failed
    every = lines(out)
    assert_lines_in_order(every, expected)
    for r in every:
        assert_output_line(r)
        want = 400 if r["custom_id"].startswith("bad-") else 200
        assert r["response"]["status_code"] == want
    assert summary_counts(done.stdout) == (306, 300, 6)
    for word in ("upstream_error", "tokens", str(out), "all.jsonl.batchgate"):
        assert word in done.stdout
    assert "cost      at least $0.000000000 (300 requests on a model with no price)" in done.stdout
    assert not list(out.parent.glob(".*partial")), "a temporary output file was left behind"

    # The same command again sends nothing and writes the same file; --allow-failures exits 0.
    before = sim_requests(upstream)
    assert run(procs, str(src), "-o", str(out), "--upstream", upstream).rc == 3
    assert run(procs, str(src), "-o", str(out), "--upstream", upstream, "--allow-failures").rc == 0
    assert sim_requests(upstream) == before
    assert lines(out) == every

    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    done = run(procs, str(src), "-o", str(good), "--errors", str(bad), "--upstream", upstream)
    assert done.rc == 3, procs.logs()
    assert_lines_in_order(lines(good), [c for c in expected if c.startswith("req-")])
    assert_lines_in_order(lines(bad), [c for c in expected if c.startswith("bad-")])
    assert all(r["response"]["status_code"] == 400 for r in lines(bad))
    assert summary_counts(done.stdout) == (306, 300, 6)
    assert str(bad) in done.stdout

    # Another input on the first run's state is refused, and --fresh starts over.
    other = tmp_path / "other.jsonl"
    other.write_bytes(chat_lines(5, prefix="other"))
    done = run(procs, str(other), "-o", str(out), "--upstream", upstream)
    assert done.rc == 2 and "different input" in done.stderr and "--fresh" in done.stderr
    assert lines(out) == every, "a refused run must leave the old output alone"
    done = run(procs, str(other), "-o", str(out), "--upstream", upstream, "--fresh")
    assert done.rc == 0, procs.logs()
    assert_lines_in_order(lines(out), [f"other-{i}" for i in range(5)])


# -- (b) SIGKILL midway, then the same command again -----------------------------------------------


def test_kill9_midway_then_rerun_resends_at_most_what_was_in_flight(
    procs: Procs, tmp_path: Path
) -> None:
    # At 10 ms a round of sends is shorter than the 20 ms group commit: without the runners'
    # hold on their recorded result, a kill loses more than ``concurrency`` sent results.
    n, concurrency = 800, 16
    _, upstream = procs.simulator("--latency-ms", "10")
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(n))
    args = (str(src), "-o", str(out), "--upstream", upstream, "--concurrency", str(concurrency))
    db = tmp_path / "out.jsonl.batchgate" / "batchgate.db"

    first = start_run(procs, *args)
    procs.wait_until(lambda: recorded(db) >= n // 4, "a quarter recorded", 30, first, 0.005)
    first.kill9()
    at_kill = recorded(db)
    assert at_kill < n, f"too late to kill: {at_kill}/{n} were already recorded"
    assert not out.exists(), "a killed run left an OUTPUT behind"

    done = run(procs, *args, timeout=20)  # the killed run's 30 s leases are not waited for
    assert done.rc == 0, procs.logs()
    assert_lines_in_order(lines(out), [f"req-{i}" for i in range(n)])
    assert all(r["response"]["status_code"] == 200 for r in lines(out))
    assert "done by an earlier run" in done.stdout
    sent = sim_requests(upstream)
    assert sent <= n + concurrency, f"{sent} upstream calls for {n} requests (C={concurrency})"


# -- (c) injected faults ---------------------------------------------------------------------------


def test_faults_are_retried_and_every_line_ends_once(procs: Procs, tmp_path: Path) -> None:
    n = 400
    _, upstream = procs.simulator(
        "--rate-429", "0.1", "--rate-500", "0.1", "--rate-drop", "0.05", "--retry-after-s", "0"
    )
    src, out, errs = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    src.write_bytes(chat_lines(n))
    done = run(
        procs, str(src), "-o", str(out), "--errors", str(errs), "--upstream", upstream,
        "--concurrency", "16", "--retry-base-delay", "0.01", "--max-attempts", "6",
    )  # fmt: skip
    assert done.rc == (3 if lines(errs) else 0), procs.logs()
    good, bad = lines(out), lines(errs)
    ids = [r["custom_id"] for r in good + bad]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(n)), "a line is missing or repeated"
    line_of = [int(r["custom_id"].split("-")[1]) for r in good]
    assert line_of == sorted(line_of), "OUTPUT is not in input order"
    assert len(good) >= 0.95 * n, f"only {len(good)}/{n} succeeded"
    assert all(r["response"]["status_code"] == 200 for r in good)
    assert summary_counts(done.stdout) == (n, len(good), len(bad))
    assert sim_requests(upstream) > n, "no fault was injected"


# -- (d) Ctrl-C, a second run on the same state, and resume ----------------------------------------


def test_sigint_stops_cleanly_names_the_resume_command_and_resumes(
    procs: Procs, tmp_path: Path
) -> None:
    n = 600
    _, upstream = procs.simulator("--latency-ms", "50")
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(n))
    args = (str(src), "-o", str(out), "--upstream", upstream, "--concurrency", "8")
    db = tmp_path / "out.jsonl.batchgate" / "batchgate.db"

    first = start_run(procs, *args)
    procs.wait_until(lambda: recorded(db) >= 40, "40 recorded", 30, first, 0.01)
    second = run(procs, *args, "--fresh")
    assert second.rc == 2 and "Another batchgate run" in second.stderr, second
    assert first.alive(), "the refused second run disturbed the first"

    first.popen.send_signal(signal.SIGINT)
    done = finish(procs, first, 15)
    assert done.rc == 130, procs.logs()
    assert "Resume with:" in done.stderr
    assert "batchgate run " + " ".join(args) in done.stderr
    assert not out.exists()
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        leased = conn.execute("SELECT COUNT(*) FROM requests WHERE state = 'leased'").fetchone()
    assert leased == (0,), "the stopped run kept leases"
    interrupted_at = recorded(db)
    assert interrupted_at < n, "too late to interrupt"

    done = run(procs, *args)
    assert done.rc == 0, procs.logs()
    assert_lines_in_order(lines(out), [f"req-{i}" for i in range(n)])
    assert summary_counts(done.stdout) == (n, n, 0)


# -- (e) clear errors ------------------------------------------------------------------------------


def test_invalid_input_is_reported_with_lines_and_leaves_nothing(
    procs: Procs, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = chat_lines(3).decode().splitlines(keepends=True)
    src.write_text(good[0] + "{not json\n" + good[1] + '{"custom_id": "x"}\n')
    done = run(procs, str(src), "-o", str(out), "--upstream", "http://127.0.0.1:9/v1", "--no-check")
    assert done.rc == 4, procs.logs()  # the batch failed (its validation): nothing was sent
    assert "Line 2" in done.stderr and "invalid_json_line" in done.stderr, done.stderr
    assert "Line 4" in done.stderr, done.stderr
    assert not out.exists()
    assert not (tmp_path / "out.jsonl.batchgate").exists(), "a failed validation kept state"


def test_no_upstream_names_the_options(procs: Procs, tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(2))
    done = run(procs, str(src), "-o", str(out))
    assert done.rc == 2
    assert "--upstream" in done.stderr and "--config" in done.stderr, done.stderr
    assert not out.exists() and not (tmp_path / "out.jsonl.batchgate").exists()


def test_the_summary_prices_the_run_from_the_config(procs: Procs, tmp_path: Path) -> None:
    _, upstream = procs.simulator()
    config = priced_config_file(tmp_path / "bg.toml", upstream)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(20))
    done = run(procs, str(src), "-o", str(out), "--config", str(config))
    assert done.rc == 0, procs.logs()
    usage = [r["response"]["body"]["usage"] for r in lines(out)]
    ticks = sum(u["prompt_tokens"] * 1000 + u["completion_tokens"] * 2000 for u in usage)
    assert f"cost      ${ticks // 10**9}.{ticks % 10**9:09d}" in done.stdout, done.stdout


def test_a_local_run_takes_files_past_the_servers_limits_unless_told_otherwise() -> None:
    """The server's 50,000 lines and 200 MB follow the hosted APIs; a local run streams its
    file and keeps no limit of them, but an explicit limit (flag or config file) holds."""
    from batchgate.cli.runtime import LOCAL_MAX_FILE_BYTES, LOCAL_MAX_LINES, local_limits
    from batchgate.config import Config, Limits

    lifted = local_limits(Config()).limits
    assert (lifted.max_lines, lifted.max_file_bytes) == (LOCAL_MAX_LINES, LOCAL_MAX_FILE_BYTES)
    assert lifted.max_lines > 50_000 * 1000
    kept = local_limits(Config(limits=Limits(max_lines=10, max_file_bytes=2048))).limits
    assert (kept.max_lines, kept.max_file_bytes) == (10, 2048)
