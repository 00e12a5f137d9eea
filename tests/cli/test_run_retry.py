"""``batchgate run --retry-failed [CODES]``: real processes against the simulator. A first run
meets injected faults (500s, and slow replies past --upstream-timeout) with --max-attempts 1;
the retry, against a working upstream, sends only the failed lines (the simulator counts them),
keeps the rest, and rewrites OUTPUT and --errors in input order; the code filter; nothing to
retry; a retry on another upstream URL, said out loud."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from batchgate.cli.runretry import RetryFailed, retry_command, with_optional_value
from batchgate.errors import ConfigError
from batchgate.sim import SimHandle
from tests.cli.test_run import assert_lines_in_order, lines, run, sim_requests, summary_counts
from tests.helpers.procs import Procs, chat_lines

pytestmark = pytest.mark.timeout(90)

N = 60
IDS = [f"req-{i}" for i in range(N)]


def _codes(path: Path) -> Counter[str]:
    """The failed lines of an output file: an upstream's error answer shows as its status in
    ``response`` (row code upstream_error), others as ``error.code``."""
    found: Counter[str] = Counter()
    for r in lines(path):
        if r["error"] is not None:
            found[r["error"]["code"]] += 1
        elif r["response"]["status_code"] >= 300:
            found[f"HTTP {r['response']['status_code']}"] += 1
    return found


def test_only_the_failed_lines_are_sent_again_and_the_files_are_rewritten(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    src, out, errs = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    src.write_bytes(chat_lines(N))
    args = (str(src), "-o", str(out), "--errors", str(errs), "--upstream", sim.url)
    sim.configure(rate_500=0.3)
    first = run(procs, *args, "--max-attempts", "1")
    assert first.rc == 3, procs.logs()
    failed = len(lines(errs))
    assert 0 < failed < N and _codes(errs) == {"HTTP 500": failed}
    assert f"retry     batchgate run {' '.join(args)} --max-attempts 1 --retry-failed" in (
        first.stdout
    )

    sim.configure(rate_500=0.0)
    sim.reset()
    done = run(procs, *args, "--retry-failed")
    assert done.rc == 0, procs.logs()
    assert sim.stats()["requests"] == failed, "a line that had succeeded was sent again"
    assert f"retrying {failed} failed lines (upstream_error: {failed})" in done.stderr
    assert f"this run  {failed} finished" in done.stdout
    assert summary_counts(done.stdout) == (N, N, 0)
    assert_lines_in_order(lines(out), IDS)
    assert all(r["response"]["status_code"] == 200 for r in lines(out))
    assert lines(errs) == []

    again = run(procs, *args, "--retry-failed")  # nothing left to retry: says so, sends nothing
    assert again.rc == 0 and "nothing to retry: no line failed" in again.stderr
    assert sim.stats()["requests"] == failed


def test_the_code_filter_retries_only_those_codes(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(N))
    args = (str(src), "-o", str(out), "--upstream", sim.url, "--upstream-timeout", "0.5")
    sim.configure(rate_500=0.2, rate_slow=0.2, slow_ms=3000)
    assert run(procs, *args, "--max-attempts", "1").rc == 3, procs.logs()
    codes = _codes(out)
    assert set(codes) == {"HTTP 500", "request_timeout"}, codes  # codes upstream_error, ...
    timeouts, errors = codes["request_timeout"], codes["HTTP 500"]

    sim.configure(rate_500=0.0, rate_slow=0.0)
    sim.reset()
    done = run(procs, *args, "--retry-failed", "request_timeout")
    assert done.rc == 3, procs.logs()  # the upstream_error lines still failed
    assert sim.stats()["requests"] == timeouts
    plural = "s" if timeouts > 1 else ""
    assert (f"retrying {timeouts} failed line{plural} (request_timeout: {timeouts}); {errors} "
            "failed with other codes stay failed") in done.stderr  # fmt: skip
    assert _codes(out) == {"HTTP 500": errors}
    assert_lines_in_order(lines(out), IDS)

    none = run(procs, *args, "--retry-failed", "request_timeout,malformed_response")
    assert none.rc == 3 and sim.stats()["requests"] == timeouts
    assert ("nothing to retry: no failed line has malformed_response, request_timeout (they "
            f"have upstream_error: {errors})") in none.stderr  # fmt: skip

    done = run(procs, *args, "--retry-failed=upstream_error,request_timeout")
    assert done.rc == 0, procs.logs()
    assert sim.stats()["requests"] == timeouts + errors
    assert _codes(out) == {}
    assert_lines_in_order(lines(out), IDS)


def test_a_retry_on_another_upstream_says_so(procs: Procs, tmp_path: Path) -> None:
    """The first upstream answers only 500s (an outage); the retry goes to a working one."""
    _, down = procs.simulator("--rate-500", "1.0")
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(10))
    first = run(procs, str(src), "-o", str(out), "--upstream", down, "--max-attempts", "1",
                "--retry-failed")  # fmt: skip  # a first run has nothing to retry yet
    assert first.rc == 3, procs.logs()
    assert "nothing to retry yet: the batch is validating" in first.stderr
    assert _codes(out) == {"HTTP 500": 10} and sim_requests(down) == 10

    _, up = procs.simulator()
    done = run(procs, str(src), "-o", str(out), "--upstream", up, "--retry-failed")
    assert done.rc == 0, procs.logs()
    assert f"upstream changed since the last run: {down} -> {up}" in done.stderr.splitlines()
    assert sim_requests(up) == 10 and sim_requests(down) == 10
    assert_lines_in_order(lines(out), [f"req-{i}" for i in range(10)])

    again = run(procs, str(src), "-o", str(out), "--upstream", up)
    assert "changed since the last run" not in again.stderr  # the new URL was kept


def test_refusals_are_usage_errors(procs: Procs, sim: SimHandle, tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(1))
    both = run(procs, str(src), "-o", str(out), "--upstream", sim.url, "--fresh", "--retry-failed")
    assert both.rc == 2 and "--fresh starts over" in both.stderr
    bad = run(procs, str(src), "-o", str(out), "--upstream", sim.url, "--retry-failed=Bad!")
    assert bad.rc == 2 and "expected error codes separated by commas" in bad.stderr
    assert not out.exists() and sim.stats()["requests"] == 0


def test_the_value_is_optional_and_read_only_when_it_is_codes() -> None:
    flag = "--retry-failed"
    assert with_optional_value(["in.jsonl", flag]) == ["in.jsonl", f"{flag}="]
    assert with_optional_value([flag, "in.jsonl", "-o", "o"]) == [f"{flag}=", "in.jsonl", "-o", "o"]
    assert with_optional_value([flag, "--fresh"]) == [f"{flag}=", "--fresh"]
    assert with_optional_value([flag, "a_b,c"]) == [flag, "a_b,c"]
    assert with_optional_value([f"{flag}=x", "--", flag]) == [f"{flag}=x", "--", flag]
    assert RetryFailed.parse(None) is None
    assert RetryFailed.parse("") == RetryFailed(None)
    assert RetryFailed.parse("a, b") == RetryFailed(frozenset({"a", "b"}))
    for bad in (",", "A", "x y"):
        with pytest.raises(ConfigError, match="error codes"):
            RetryFailed.parse(bad)
    argv = ("run", "in.jsonl", "-o", "o", "--fresh", flag, "a,b", "--rpm", "5")
    assert retry_command(argv) == f"batchgate run in.jsonl -o o --rpm 5 {flag}"
