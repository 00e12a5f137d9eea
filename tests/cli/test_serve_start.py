"""What ``serve`` and ``worker`` check before they start, with real processes: one worker per
SQLite data directory (a second would double the upstream's load), and the port bound before
the worker starts (a port in use is said at once)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from batchgate.sim import SimHandle
from tests.helpers.procs import Procs, batchgate_argv, free_port

pytestmark = pytest.mark.timeout(60)


def test_one_worker_per_sqlite_data_directory(procs: Procs, tmp_path: Path, sim: SimHandle) -> None:
    data = str(tmp_path / "data")
    first = procs.serve("--data-dir", data, "--upstream", sim.url)
    second = procs.spawn("serve", batchgate_argv(
        "serve", "--port", str(free_port()), "--data-dir", data, "--upstream", sim.url,
    ))  # fmt: skip
    assert second.popen.wait(timeout=30) == 2
    said = second.stderr_path.read_text()
    assert f"pid {first.popen.pid}" in said and "runs a worker on the SQLite store" in said
    worker = procs.spawn("worker", batchgate_argv("worker", "--data-dir", data, "--upstream",
                                                  sim.url))  # fmt: skip
    assert worker.popen.wait(timeout=30) == 2
    # An API process without a worker may share the directory.
    api = procs.serve("--data-dir", data, "--upstream", sim.url, "--no-worker")
    assert httpx.get(f"http://127.0.0.1:{api.port}/v1/batches").status_code == 200
    first.kill_group()  # the lock goes with the process, kill -9 included
    first.popen.wait(timeout=10)
    again = procs.serve("--data-dir", data, "--upstream", sim.url)
    assert httpx.get(f"http://127.0.0.1:{again.port}/health").status_code == 200


def test_a_port_in_use_is_said_before_anything_starts(procs: Procs, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = procs.spawn("serve", batchgate_argv(
            "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
            "--upstream", "http://127.0.0.1:9/v1",
        ))  # fmt: skip
        assert proc.popen.wait(timeout=30) == 2
    said = proc.stderr_path.read_text()
    assert f"Cannot listen on 127.0.0.1:{port}: address already in use" in said, said
    assert "--port" in said
    assert "upstream" not in said  # refused before the upstream check and the worker
    assert not (tmp_path / "data").exists()
