"""``batchgate run`` through an upstream outage, as a user meets one: real processes.

The upstream is not there when the run starts (``--no-check``); the run says the upstream is
unavailable and that its rows are held, sends nothing else, and when a simulator comes up on
that port every line succeeds, nothing was charged to its attempts, and the exit code is 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_run import finish, start_run
from tests.helpers.procs import Procs, batchgate_argv, chat_lines, free_port

pytestmark = pytest.mark.timeout(90)


def test_run_waits_out_an_outage_and_says_so(procs: Procs, tmp_path: Path) -> None:
    tmp = tmp_path
    port = free_port()
    inp, out = tmp / "in.jsonl", tmp / "out.jsonl"
    n = 30
    inp.write_bytes(chat_lines(n))
    run = start_run(
        procs, str(inp), "-o", str(out), "--upstream", f"http://127.0.0.1:{port}/v1",
        "--no-check", "--concurrency", "8", "--max-attempts", "2",
    )  # fmt: skip
    procs.wait_until(
        lambda: "upstream default unavailable" in run.stderr_path.read_text(),
        "the run says the upstream is unavailable", 30, run,
    )  # fmt: skip
    assert "rows held" in run.stderr_path.read_text()
    assert run.alive()  # waiting, not failing the lines
    procs.spawn("simulate", batchgate_argv("simulate", "--port", str(port)))
    done = finish(procs, run, timeout=60)
    assert done.rc == 0, procs.logs()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == n and all(r["response"]["status_code"] == 200 for r in rows)
