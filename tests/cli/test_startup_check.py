"""The upstreams' start-up check: ``serve``, ``worker`` and ``run`` ask each upstream for
``GET /models`` once at start. Against the live simulator (silent), a closed port, a URL
without ``/v1`` (the simulator answers 404 there) and a server that refuses the key: one line
naming the upstream, its URL and the likely fix; ``serve``/``worker`` go on, ``run`` refuses
before it sends or stores anything, unless ``--no-check``."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchgate.cli.checks import check, check_all, problem_line
from batchgate.config import UpstreamConfig
from batchgate.sim import SimHandle
from tests.cli.test_run import lines, run
from tests.helpers.procs import Procs, chat_lines, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def refusing() -> Iterator[str]:
    """A real server answering every GET 401 (a wrong or missing key); its base URL, /v1."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": {"message": "Incorrect API key", "type": "auth"}})
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def _line(upstream: UpstreamConfig) -> str:
    got = check(upstream, 5.0)
    assert not got.ok and got.blocking, got
    return problem_line(upstream, got)


def test_each_problem_is_one_line_with_its_likely_fix(sim: SimHandle, refusing: str) -> None:
    port = free_port()
    closed = _line(UpstreamConfig("local", f"http://127.0.0.1:{port}/v1"))
    assert closed.startswith(f"upstream local (http://127.0.0.1:{port}/v1) is unreachable (")
    assert closed.endswith(f"is the server running on 127.0.0.1:{port}?")

    no_v1 = _line(UpstreamConfig("sim", sim.base_url))
    assert no_v1 == (
        f"upstream sim ({sim.base_url}) answers HTTP 404 to GET /models: "
        f"add /v1 to the URL ({sim.base_url}/v1)?"
    )
    wrong_path = _line(UpstreamConfig("sim", f"{sim.base_url}/api/v1"))
    assert "404" in wrong_path and "add /v1" not in wrong_path

    unset = _line(UpstreamConfig("oa", refusing, api_key_env="NO_SUCH_KEY_VAR"))
    assert unset.endswith("answers HTTP 401 to GET /models: $NO_SUCH_KEY_VAR is not set; set "
                          "it to the upstream's API key")  # fmt: skip
    assert "--api-key-env" in _line(UpstreamConfig("oa", refusing))
    assert all("\n" not in x for x in (closed, no_v1, wrong_path, unset))


def test_every_kind_is_checked_at_once_and_a_live_one_is_ok(sim: SimHandle) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    got = check_all(
        [UpstreamConfig("oa", sim.url), UpstreamConfig("claude", sim.url, kind="anthropic"),
         UpstreamConfig("dead", dead)],
        5.0,
    )  # fmt: skip
    assert list(got) == ["oa", "claude", "dead"]
    assert got["oa"].ok and got["claude"].ok and got["oa"].status == 200
    assert not got["dead"].ok and got["dead"].cause == "refused"


# -- run: refuses before anything is sent or stored ------------------------------------------------


def test_run_against_a_live_upstream_says_nothing(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(3))
    done = run(procs, str(src), "-o", str(out), "--upstream", sim.url)
    assert done.rc == 0, procs.logs()
    assert "warning" not in done.stderr and "upstream" not in done.stderr, done.stderr
    assert len(lines(out)) == 3


def test_run_refuses_a_closed_port_and_a_missing_v1(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(3))
    state = tmp_path / "out.jsonl.batchgate"
    port = free_port()

    done = run(procs, str(src), "-o", str(out), "--upstream", f"http://127.0.0.1:{port}/v1")
    assert done.rc == 2, procs.logs()
    first, *rest = done.stderr.strip().splitlines()
    assert first.startswith("error: upstream default (http://127.0.0.1:")
    assert first.endswith(f"is the server running on 127.0.0.1:{port}?")
    assert rest == ["Nothing was sent. Fix the upstream, or pass --no-check to start anyway."]
    assert not out.exists() and not state.exists()

    done = run(procs, str(src), "-o", str(out), "--upstream", sim.base_url)
    assert done.rc == 2, procs.logs()
    assert f"add /v1 to the URL ({sim.base_url}/v1)?" in done.stderr
    assert not out.exists() and not state.exists()
    assert sim.stats()["requests"] == 0


def test_run_names_every_bad_upstream_of_a_config(
    procs: Procs, sim: SimHandle, tmp_path: Path
) -> None:
    config = tmp_path / "bg.toml"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config.write_text(f"""
default = "ok"
[providers.ok]
url = "{sim.url}"
[providers.claude]
kind = "anthropic"
url = "{sim.base_url}"
[providers.dead]
url = "{dead}"
""")
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(2))
    done = run(procs, str(src), "-o", str(out), "--config", str(config))
    assert done.rc == 2, procs.logs()
    got = done.stderr.splitlines()
    assert got[0] == "error: 2 upstreams cannot serve:"
    assert (
        got[1].startswith(f"  upstream claude ({sim.base_url}) answers HTTP 404")
        and "/v1" in got[1]
    )
    assert got[2].startswith(f"  upstream dead ({dead}) is unreachable")
    assert "upstream ok" not in done.stderr


def test_run_with_no_check_sends_anyway(procs: Procs, sim: SimHandle, tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(2))
    done = run(procs, str(src), "-o", str(out), "--upstream", sim.base_url, "--no-check",
               "--max-attempts", "1")  # fmt: skip
    assert "Nothing was sent" not in done.stderr and "warning" not in done.stderr, done.stderr
    got = lines(out)  # sent: the simulator answered 404 to each (its path lacks /v1)
    assert [r["response"]["status_code"] for r in got] == [404, 404], got


# -- serve and worker: warn and go on --------------------------------------------------------------


def test_serve_and_worker_warn_once_and_start(procs: Procs, sim: SimHandle, tmp_path: Path) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{port}/v1"
    served = procs.serve("--upstream", dead, "--data-dir", str(tmp_path / "a"))
    warnings = [x for x in served.stderr_path.read_text().splitlines() if "warning" in x]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: upstream default ({dead}) is unreachable (")
    assert warnings[0].endswith(f"is the server running on 127.0.0.1:{port}?")
    worker = procs.worker("--upstream", sim.base_url, "--data-dir", str(tmp_path / "b"))
    warnings = [x for x in worker.stderr_path.read_text().splitlines() if "warning" in x]
    assert len(warnings) == 1 and "add /v1 to the URL" in warnings[0], warnings

    quiet = procs.serve("--upstream", sim.url, "--data-dir", str(tmp_path / "c"))
    skipped = procs.worker("--upstream", dead, "--no-check", "--data-dir", str(tmp_path / "d"))
    for proc in (quiet, skipped):
        assert "warning" not in proc.stderr_path.read_text(), proc.logs()
