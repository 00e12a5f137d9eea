"""The simulator's HTTP layer over raw sockets (keep-alive, pipelining order, 100-continue,
bad requests, body limit) and its process entry point ``run_simulator``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from batchgate.sim import SimConfig, SimHandle, protocol, server, start_in_thread


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with start_in_thread(SimConfig()) as handle:
        yield handle


def request(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: sim", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_replies(sock: socket.socket, count: int) -> list[tuple[bytes, dict[str, str], bytes]]:
    """Read ``count`` HTTP responses (status line, headers, body) off ``sock``."""
    buffer = b""
    replies: list[tuple[bytes, dict[str, str], bytes]] = []
    while len(replies) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = {
            k.decode().lower(): v.decode().strip()
            for k, v in (line.split(b":", 1) for line in lines)
        }
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        replies.append((status, headers, buffer[:length]))
        buffer = buffer[length:]
    return replies


def chat_body(text: str) -> bytes:
    messages = [{"role": "user", "content": text}]
    return json.dumps({"model": "m", "messages": messages}).encode()


def test_pipelined_requests_are_answered_in_order(sim: SimHandle) -> None:
    sim.configure(latency_ms=100, jitter_ms=90)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        texts = [f"question {i}" for i in range(5)]
        sock.sendall(b"".join(request("/v1/chat/completions", chat_body(t)) for t in texts))
        replies = read_replies(sock, 5)
    for text, (status, headers, body) in zip(texts, replies, strict=True):
        assert status == b"HTTP/1.1 200 OK"
        assert headers["x-request-id"].startswith("req_")
        assert json.loads(body)["choices"][0]["message"]["content"].startswith(
            f"Simulated reply to: {text}\n"
        )
    assert len({headers["x-request-id"] for _, headers, _ in replies}) == 5


def test_connection_close_is_honoured(sim: SimHandle) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(request("/v1/chat/completions", chat_body("x"), "Connection: close"))
        [(status, headers, _)] = read_replies(sock, 1)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["connection"] == "close"
        assert sock.recv(10) == b""  # the server closed its side


def test_expect_100_continue(sim: SimHandle) -> None:
    body = chat_body("continue")
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        head = request("/v1/chat/completions", b"", "Expect: 100-continue")
        sock.sendall(head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode()))
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        [(status, _, _)] = read_replies(sock, 1)
    assert status == b"HTTP/1.1 200 OK"


def test_garbage_gets_400_and_close(sim: SimHandle) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        [(status, headers, body)] = read_replies(sock, 1)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert headers["connection"] == "close"
    assert "error" in json.loads(body)


def test_body_over_limit_gets_413(sim: SimHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_BODY_BYTES", 1000)
    reply = httpx.post(sim.url + "/chat/completions", content=b"x" * 2000)
    assert reply.status_code == 413
    assert sim.stats()["requests"] == 0


def test_stop_closes_open_connections_and_is_idempotent() -> None:
    handle = start_in_thread(SimConfig())
    with socket.create_connection(("127.0.0.1", handle.port), timeout=5) as sock:
        handle.stop()
        assert sock.recv(10) == b""
    handle.stop()
    with pytest.raises(RuntimeError):
        handle.stats()


def test_handle_url_and_port(sim: SimHandle) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}/v1"
    assert httpx.get(sim.url + "/models").status_code == 200


def test_run_simulator_prints_listening_line_and_stops_on_sigterm() -> None:
    code = (
        "from batchgate.sim import SimConfig, run_simulator; "
        "run_simulator(SimConfig(latency_ms=1), '127.0.0.1', 0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulate listening on http://127.0.0.1:")
        base = line.split()[-1]
        reply = httpx.post(base + "/v1/embeddings", json={"model": "e", "input": "x"})
        assert reply.status_code == 200
        assert httpx.get(base + "/_sim/config").json()["latency_ms"] == 1.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_simulator_bug_is_a_500_not_a_hang(
    sim: SimHandle, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(request: dict[str, Any], config: SimConfig) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setitem(server.MODEL_ENDPOINTS, "/v1/embeddings", broken)
    reply = httpx.post(sim.url + "/embeddings", json={"model": "e", "input": "x"})
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "simulator_bug"
    assert "RuntimeError: boom" in capsys.readouterr().err
    assert sim.stats()["in_flight"] == 0
