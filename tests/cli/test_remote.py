"""The client commands (submit, status, wait, results, cancel, retry, ls, files) against a live
server on a real socket, and their one-line errors."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from batchgate.cli.main import app
from batchgate.sim import SimHandle
from tests.helpers.procs import batchgate_argv, chat_lines, free_port
from tests.helpers.servers import ServerHandle

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cli(server: ServerHandle) -> Callable[..., Result]:
    """Run one ``batchgate …`` command in-process against ``server`` (BATCHGATE_URL)."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env={"BATCHGATE_URL": server.url, **(env or {})})

    return invoke


def _input(tmp_path: Path, n: int, name: str = "in.jsonl", **kw: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(chat_lines(n, **kw))
    return path


def _ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_submit_wait_status_results_ls(cli: Callable[..., Result], tmp_path: Path) -> None:
    bid = _ok(cli("submit", str(_input(tmp_path, 5)))).strip()
    assert bid.startswith("batch_")
    waited = cli("wait", bid, "--poll", "0.05")
    _ok(waited)
    assert "5/5 done, 5 succeeded, 0 failed" in waited.stderr
    shown = _ok(cli("status", bid))
    assert bid in shown and "completed" in shown and "output" in shown
    raw = json.loads(_ok(cli("status", bid, "--json")))
    assert raw["id"] == bid and raw["request_counts"]["completed"] == 5
    out = tmp_path / "out.jsonl"
    got = cli("results", bid, "-o", str(out))
    _ok(got)
    assert "5 result lines" in got.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [f"req-{i}" for i in range(5)]
    assert all(x["response"]["status_code"] == 200 for x in lines)
    assert bid in _ok(cli("ls"))


def test_submit_with_wait_reports_failures_and_exit_status(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(chat_lines(2) + chat_lines(1, model="fail-x", prefix="bad"))
    result = cli("submit", str(path), "--wait", "--poll", "0.05")
    assert result.exit_code == 3, result.output  # completed, with a failed line
    assert "3/3 done, 2 succeeded, 1 failed" in result.stderr
    assert "errors" in result.stderr
    assert "cost      not priced" in result.stderr  # the simulator's models have no price


def test_retry_sends_the_failed_lines_again_with_the_exit_codes_of_wait(
    cli: Callable[..., Result], tmp_path: Path, sim: SimHandle
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(chat_lines(2) + chat_lines(2, model="fail-x", prefix="bad"))
    first = cli("submit", str(path), "--wait", "--poll", "0.05")
    assert first.exit_code == 3, first.output
    bid = first.stdout.strip()
    assert f"batchgate retry {bid}" in first.stderr  # the next step is named

    nothing = cli("retry", bid, "--error-codes", "upstream_unreachable")
    assert nothing.exit_code == 1 and "no failed requests" in nothing.stderr
    still = cli("retry", bid, "--wait", "--poll", "0.05")  # the upstream still refuses them
    assert still.exit_code == 3 and "2/2 done, 0 succeeded, 2 failed" in still.stderr
    first_retry = still.stdout.strip()
    again = cli("retry", bid)  # once per batch: the lines that still fail are the retry's
    assert again.exit_code == 1 and f"already retried as {first_retry}" in again.stderr
    sim.configure(fail_model_prefix="")
    fixed = cli("retry", first_retry, "--wait", "--poll", "0.05")
    assert fixed.exit_code == 0, fixed.output
    new = fixed.stdout.strip()
    assert new.startswith("batch_") and new not in (bid, first_retry)
    assert "2/2 done, 2 succeeded, 0 failed" in fixed.stderr
    raw = json.loads(_ok(cli("status", new, "--json")))
    assert raw["metadata"] == {"retry_of": first_retry}
    lines = [json.loads(x) for x in _ok(cli("results", new)).splitlines()]
    assert [x["custom_id"] for x in lines] == ["bad-0", "bad-1"]


def test_an_invalid_file_fails_with_its_located_errors(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(chat_lines(1) + b'{"custom_id": "x"}\n')
    result = cli("submit", str(path), "--wait", "--poll", "0.05")
    assert result.exit_code == 4  # the batch itself failed
    assert "failed" in result.stderr
    assert "  error     Line 2: 'method' is required." in result.stderr  # said once
    assert "batchgate results" not in result.stderr and "batchgate retry" not in result.stderr


def test_anthropic_lines_make_a_message_batch(cli: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "msgs.jsonl"
    path.write_text("".join(
        json.dumps({"custom_id": f"m{i}", "params": {
            "model": "sim-model", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
        for i in range(3)
    ))  # fmt: skip
    bid = _ok(cli("submit", str(path))).strip()
    assert bid.startswith("msgbatch_")
    _ok(cli("wait", bid, "--poll", "0.05"))
    lines = [json.loads(x) for x in _ok(cli("results", bid)).splitlines()]
    assert [(x["custom_id"], x["result"]["type"]) for x in lines] == [
        (f"m{i}", "succeeded") for i in range(3)
    ]
    assert bid in _ok(cli("ls"))


def test_cancel(make_server: Callable[..., ServerHandle], tmp_path: Path) -> None:
    api_only = make_server(worker=False)
    env = {"BATCHGATE_URL": api_only.url}
    runner = CliRunner()
    bid = _ok(runner.invoke(app, ["submit", str(_input(tmp_path, 3))], env=env)).strip()
    assert "cancelling" in _ok(runner.invoke(app, ["cancel", bid], env=env))
    timed_out = runner.invoke(app, ["wait", bid, "--timeout", "0.3", "--poll", "0.05"], env=env)
    assert timed_out.exit_code == 1
    assert f"batchgate wait {bid}" in timed_out.stderr


def test_files_commands(cli: Callable[..., Result], tmp_path: Path) -> None:
    path = _input(tmp_path, 2)
    fid = _ok(cli("files", "upload", str(path))).strip()
    assert fid.startswith("file-")
    assert fid in _ok(cli("files", "ls"))
    assert json.loads(_ok(cli("files", "get", fid)))["bytes"] == path.stat().st_size
    copy = tmp_path / "copy.jsonl"
    _ok(cli("files", "content", fid, "-o", str(copy)))
    assert copy.read_bytes() == path.read_bytes()
    _ok(cli("files", "rm", fid))
    missing = cli("files", "get", fid)
    assert missing.exit_code == 1 and "batchgate files ls" in missing.stderr


def test_unknown_batch_names_the_next_command(cli: Callable[..., Result]) -> None:
    result = cli("status", "batch_nope")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "batch_nope" in line and "`batchgate ls`" in line


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["ls", "--url", url])
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"cannot reach batchgate at {url}" in line and "BATCHGATE_URL" in line
    assert line.lower().count("cannot reach") == 1 and line.count("batchgate serve") == 1


def test_a_url_without_a_scheme_is_a_usage_error_that_says_so() -> None:
    result = CliRunner().invoke(app, ["ls", "--url", "127.0.0.1:8080"])
    assert result.exit_code == 2
    assert "needs a scheme: http://127.0.0.1:8080" in result.stderr


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A server that answers every request 401 with an OpenAI error envelope (a stand-in for
    a batchgate with keys, which this tree does not have yet)."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": {"message": "Invalid API key.", "type": "auth"}})
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_a_refused_key_says_how_to_pass_one(refusing_server: str) -> None:
    env = {"BATCHGATE_URL": refusing_server, "BATCHGATE_API_KEY": "k"}
    result = CliRunner().invoke(app, ["status", "batch_x"], env=env)
    assert result.exit_code == 1
    assert "refused the API key (Invalid API key.)" in result.stderr
    assert "--api-key" in result.stderr


def test_submit_as_a_real_process(server: ServerHandle, tmp_path: Path) -> None:
    """The installed console script, as a user runs it (env, exit status, stdout)."""
    import subprocess

    path = _input(tmp_path, 3)
    env = {"BATCHGATE_URL": server.url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        batchgate_argv("submit", str(path), "--wait", "--poll", "0.05"),
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("batch_")
    assert "3/3 done" in done.stderr
