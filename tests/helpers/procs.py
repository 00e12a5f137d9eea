"""Real processes for end-to-end tests: ``batchgate serve``/``worker``/``simulate`` on sockets.

Each process gets its own session (process group) and its stdout/stderr go to files under the
test's tmp_path; ``Procs.close`` kills every group it started (also when the test failed) and
prints the log tails, which pytest shows for a failing test. On Linux a child is also killed
when the test process dies (``PR_SET_PDEATHSIG``), so no server outlives a crashed run.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_LISTENING = re.compile(r"simulate listening on http://[^:\s]+:(\d+)")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free a moment ago on 127.0.0.1, drawn below the OS's ephemeral range so that
    no outgoing connection (of this or any other process) takes it before the server binds."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # fall back to any free port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def batchgate_argv(*args: str) -> list[str]:
    """The ``batchgate`` console script of this interpreter's environment, with ``args``."""
    script = Path(sys.executable).with_name("batchgate")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from batchgate.cli.main import main; main()", *args]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    port: int | None = None  # where it listens, for the servers

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logs(self, lines: int = 40) -> str:
        return (
            f"--- {self.name} (pid {self.pid}, rc {self.popen.poll()}): {' '.join(self.argv)}\n"
            f"[stdout]\n{tail(self.stdout_path, lines)}\n[stderr]\n{tail(self.stderr_path, lines)}"
        )

    def kill9(self) -> None:
        """SIGKILL the process itself (no clean shutdown) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


@dataclass
class Procs:
    """Starts processes for one test and guarantees they are all gone afterwards."""

    log_dir: Path
    started: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = sum(1 for p in self.started if p.name == name)
        stem = f"{name}.{n}" if n else name
        out, err = self.log_dir / f"{stem}.out", self.log_dir / f"{stem}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen(
                list(argv), stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=full_env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )  # fmt: skip
        proc = Proc(name, list(argv), popen, out, err)
        self.started.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.started)

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.logs()}")

    def close(self) -> None:
        for p in reversed(self.started):
            p.kill_group()
        if self.started:
            print(self.logs())  # pytest shows this only when the test failed

    # -- the three batchgate commands ---------------------------------------------------------

    def simulator(self, *args: str, timeout: float = 20.0) -> tuple[Proc, str]:
        """``batchgate simulate --port 0 …``; returns it and its base URL (``…/v1``)."""
        proc = self.spawn("simulate", batchgate_argv("simulate", "--port", "0", *args))
        port = self.wait_until(
            lambda: _listening_port(proc), f"simulator listening ({proc.stdout_path})",
            timeout, proc,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/_sim/stats", proc, self, timeout)
        return proc, f"{base}/v1"

    def serve(self, *args: str, timeout: float = 30.0) -> Proc:
        """``batchgate serve --port <free port> …``, ready once ``GET /health`` answers 200
        (``proc.port``). A port lost to another process in between is retried on a new one."""
        for _ in range(3):
            port = free_port()
            proc = self.spawn("serve", batchgate_argv("serve", "--port", str(port), *args))
            proc.port = port
            try:
                wait_http(f"http://127.0.0.1:{port}/health", proc, self, timeout)
            except AssertionError:
                if proc.alive() or "address already in use" not in tail(proc.stderr_path):
                    raise
                continue
            return proc
        raise self.fail("serve could not bind a port 3 times in a row")

    def worker(self, *args: str, timeout: float = 30.0) -> Proc:
        """``batchgate worker …``, ready once it printed that it started."""
        proc = self.spawn("worker", batchgate_argv("worker", *args))
        self.wait_until(
            lambda: "worker started" in proc.stdout_path.read_text(errors="replace"),
            "worker started", timeout, proc,
        )  # fmt: skip
        return proc

    def wait_until(
        self, check: Callable[[], Any], what: str, timeout: float, proc: Proc | None = None,
        interval: float = 0.02,
    ) -> Any:  # fmt: skip
        """Poll ``check`` until it returns something truthy; fail (with logs) on timeout or
        when ``proc`` exits."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if proc is not None and not proc.alive():
                raise self.fail(f"{proc.name} exited (rc {proc.popen.returncode}) before: {what}")
            if time.monotonic() > deadline:
                raise self.fail(f"timed out after {timeout}s waiting for: {what}")
            time.sleep(interval)


def _listening_port(proc: Proc) -> int | None:
    m = _LISTENING.search(proc.stdout_path.read_text(errors="replace"))
    return int(m.group(1)) if m else None


def wait_http(url: str, proc: Proc, procs: Procs, timeout: float = 30.0) -> None:
    """Wait until ``GET url`` answers 200 (connection errors count as not ready yet)."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    procs.wait_until(ready, f"GET {url} -> 200", timeout, proc, interval=0.05)


# -- the batch side --------------------------------------------------------------------------------


def chat_lines(n: int, *, model: str = "sim-model", prefix: str = "req") -> bytes:
    """A chat batch input file of ``n`` lines with custom_ids ``{prefix}-0`` …"""
    return "".join(
        json.dumps({
            "custom_id": f"{prefix}-{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }) + "\n"
        for i in range(n)
    ).encode()  # fmt: skip


def priced_config_file(path: Path, upstream: str, *, concurrency: int | None = None) -> Path:
    """A config file at ``path`` for one provider, ``sim`` at ``upstream``, pricing every
    model at 1 / 2 USD per million input / output tokens (1,000 / 2,000 ticks a token)."""
    limit = f"concurrency = {concurrency}\n" if concurrency is not None else ""
    path.write_text(
        f'default = "sim"\n[providers.sim]\nurl = "{upstream}"\n{limit}'
        'prices = { "*" = { input = 1.0, output = 2.0 } }\n'
    )
    return path


def sdk(port: int) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=30.0
    )


def submit(client: openai.OpenAI, data: bytes) -> str:
    """Upload ``data`` and create a chat batch from it; returns the batch id."""
    f = client.files.create(file=("input.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


@dataclass
class Results:
    output: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @property
    def custom_ids(self) -> list[str]:
        return [r["custom_id"] for r in self.output + self.errors]


def read_results(client: openai.OpenAI, batch: Any) -> Results:
    """Every line of a finished batch's output and error files, read with the SDK."""

    def lines(file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        return [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x]

    return Results(lines(batch.output_file_id), lines(batch.error_file_id))


def result_custom_ids(client: openai.OpenAI, batch: Any) -> list[str]:
    """The custom_id of every line across the output and error files (duplicates kept)."""
    return read_results(client, batch).custom_ids
