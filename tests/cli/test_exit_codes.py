"""Exit codes that say how a batch ended (``cli/common.py`` ``Exit``), for ``submit --wait``,
``wait`` and ``run``: 0 every line succeeded, 3 some lines failed (0 with --allow-failures),
4 the batch failed, expired or was cancelled, 2 usage, 1 the server could not be asked, 130
interrupted. Against a live server and the simulator; the simulator fails a ``fail-`` model
with a 400 (not retried)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from batchgate.cli.common import Exit, outcome
from batchgate.cli.main import app
from batchgate.config import single_upstream
from batchgate.sim import SimHandle
from batchgate.storage.schema import batches
from tests.cli.test_run import finish, lines, recorded, run, start_run
from tests.helpers.procs import Procs, batchgate_argv, chat_lines
from tests.helpers.servers import ServerHandle

pytestmark = pytest.mark.timeout(60)


def test_the_codes_in_one_place() -> None:
    assert [int(c) for c in Exit] == [0, 1, 2, 3, 4, 130]
    assert outcome("completed", 0) is Exit.OK
    assert outcome("completed", 2) is Exit.LINES_FAILED
    assert outcome("completed", 2, allow_failures=True) is Exit.OK
    for status in ("failed", "expired", "cancelled"):
        assert outcome(status, 0) is Exit.BATCH_ENDED
        assert outcome(status, 5, allow_failures=True) is Exit.BATCH_ENDED


def _cli(server: ServerHandle, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"BATCHGATE_URL": server.url})


def _mixed(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(chat_lines(3) + chat_lines(2, model="fail-x", prefix="bad"))
    return path


def _messages(tmp_path: Path, models: list[str]) -> Path:
    path = tmp_path / "msgs.jsonl"
    path.write_text("".join(
        json.dumps({"custom_id": f"m{i}", "params": {
            "model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}})
        + "\n"
        for i, model in enumerate(models)
    ))  # fmt: skip
    return path


def _slow(make_server: Callable[..., ServerHandle], sim: SimHandle) -> ServerHandle:
    """A server whose batches take a while: 2 in flight, 300 ms each."""
    sim.configure(latency_ms=300)
    return make_server(config=single_upstream(sim.url, concurrency=2, timeout=5))


def test_lines_failed_is_3_unless_allowed(server: ServerHandle, tmp_path: Path) -> None:
    mixed = str(_mixed(tmp_path))
    done = _cli(server, "submit", mixed, "--wait", "--poll", "0.05")
    assert done.exit_code == 3, done.output
    bid = done.stdout.strip()
    assert _cli(server, "wait", bid, "--poll", "0.05").exit_code == 3
    assert _cli(server, "wait", bid, "--allow-failures").exit_code == 0
    allowed = _cli(server, "submit", mixed, "--wait", "--poll", "0.05", "--allow-failures")
    assert allowed.exit_code == 0, allowed.output

    good = tmp_path / "good.jsonl"
    good.write_bytes(chat_lines(2))
    done = _cli(server, "submit", str(good), "--wait", "--poll", "0.05")
    assert done.exit_code == 0, done.output
    assert _cli(server, "wait", done.stdout.strip()).exit_code == 0


def test_message_batches_errored_is_3_cancelled_is_4(
    make_server: Callable[..., ServerHandle], sim: SimHandle, tmp_path: Path
) -> None:
    srv = _slow(make_server, sim)
    mixed = _messages(tmp_path, ["sim-model", "fail-x"])
    done = _cli(srv, "submit", str(mixed), "--wait", "--poll", "0.05")
    assert done.exit_code == 3, done.output
    assert done.stdout.strip().startswith("msgbatch_")

    many = _messages(tmp_path, ["sim-model"] * 30)
    bid = _cli(srv, "submit", str(many)).stdout.strip()
    assert _cli(srv, "cancel", bid).exit_code == 0
    done = _cli(srv, "wait", bid, "--poll", "0.05", "--allow-failures")
    assert done.exit_code == 4, done.output


def test_a_cancelled_or_expired_batch_is_4_even_with_allow_failures(
    make_server: Callable[..., ServerHandle], sim: SimHandle, tmp_path: Path
) -> None:
    srv = _slow(make_server, sim)
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(30))
    cancelled = _cli(srv, "submit", str(src)).stdout.strip()
    _cli(srv, "cancel", cancelled)
    done = _cli(srv, "wait", cancelled, "--poll", "0.05", "--allow-failures")
    assert done.exit_code == 4, done.output
    assert "cancelled" in done.stderr

    expired = _cli(srv, "submit", str(src)).stdout.strip()
    with srv.store.write() as conn:  # its window ran out (as tests/api/test_cancel_expiry.py)
        past = int(time.time()) - 1
        conn.execute(update(batches).where(batches.c.id == expired).values(expires_at=past))
    done = _cli(srv, "wait", expired, "--poll", "0.05")
    assert done.exit_code == 4, done.output
    assert "expired" in done.stderr


def test_submit_wait_as_a_process_exits_4_when_its_batch_is_cancelled(
    make_server: Callable[..., ServerHandle], sim: SimHandle, procs: Procs, tmp_path: Path
) -> None:
    srv = _slow(make_server, sim)
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(30))
    argv = batchgate_argv("submit", str(src), "--wait", "--poll", "0.05", "--url", srv.url)
    proc = procs.spawn("submit", argv)
    bid = procs.wait_until(lambda: proc.stdout_path.read_text().strip(), "the batch id", 20, proc)
    assert srv.http().post(f"/v1/batches/{bid}/cancel").status_code == 200
    assert proc.popen.wait(timeout=30) == 4, procs.logs()


def test_ctrl_c_stops_waiting_with_130_and_the_batch_runs_on(
    make_server: Callable[..., ServerHandle], sim: SimHandle, procs: Procs, tmp_path: Path
) -> None:
    srv = _slow(make_server, sim)
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(30))
    bid = _cli(srv, "submit", str(src)).stdout.strip()
    proc = procs.spawn("wait", batchgate_argv("wait", bid, "--poll", "0.05", "--url", srv.url))
    procs.wait_until(lambda: "done" in proc.stderr_path.read_text(), "progress", 20, proc)
    proc.popen.send_signal(signal.SIGINT)
    assert proc.popen.wait(timeout=20) == 130, procs.logs()
    assert f"batchgate wait {bid}" in proc.stderr_path.read_text()
    assert srv.wait_for(bid)["status"] == "completed"


def test_usage_errors_are_2_and_an_unreachable_server_is_1(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["wait"]).exit_code == 2
    assert runner.invoke(app, ["submit", str(tmp_path / "missing.jsonl")]).exit_code == 2
    assert runner.invoke(app, ["wait", "batch_x", "--timeout", "soon"]).exit_code == 2
    down = runner.invoke(app, ["wait", "batch_x", "--url", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "cannot reach batchgate" in down.stderr


# -- run -------------------------------------------------------------------------------------------


def test_run_of_a_batch_that_expired_meanwhile_is_4(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    """A run interrupted, then resumed after its window: the rest of its lines expire unsent,
    the output still gets every line, and the exit code says the batch expired."""
    n = 200
    sim.configure(latency_ms=50)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(n))
    args = (str(src), "-o", str(out), "--upstream", sim.url, "--concurrency", "2")
    db = tmp_path / "out.jsonl.batchgate" / "batchgate.db"
    first = start_run(procs, *args)
    procs.wait_until(lambda: recorded(db) >= 10, "10 recorded", 30, first, 0.01)
    first.popen.send_signal(signal.SIGINT)
    assert finish(procs, first, 15).rc == 130, procs.logs()
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("UPDATE batches SET expires_at = ?", (int(time.time()) - 1,))
    sent = sim.stats()["requests"]

    done = run(procs, *args, "--allow-failures")
    assert done.rc == 4, procs.logs()
    assert "batch expired" in done.stdout
    got = lines(out)
    assert [r["custom_id"] for r in got] == [f"req-{i}" for i in range(n)]
    assert {r["error"]["code"] for r in got if r["error"]} == {"batch_expired"}
    assert sim.stats()["requests"] == sent, "an expired batch sent more"


def test_run_usage_error_is_2(procs: Procs, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(1))
    done = subprocess.run(
        batchgate_argv("run", str(src), "-o", str(tmp_path / "o"), "--concurrency", "many"),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "--concurrency" in done.stderr
