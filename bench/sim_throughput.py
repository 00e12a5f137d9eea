"""Measure the simulated upstream's throughput: simple chat requests per second.

The simulator runs in its own process pinned to one core (``taskset -c 0``); the load comes
from aiohttp + uvloop client process(es) on other cores, ``--concurrency`` requests in flight
over keep-alive connections, for ``--seconds`` after a short warm-up. Besides requests/s it
prints the simulator's CPU use over the window, and so its capacity per fully busy core
(requests/s divided by that CPU share): when the client is the bottleneck (one aiohttp client
core tops out near the simulator's speed), the capacity is the figure that says how far the
simulator is from being one.

    .venv/bin/python bench/sim_throughput.py [--seconds 5] [--concurrency 128] [--clients 1]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import multiprocessing.queues
import os
import subprocess
import sys
import time
from typing import TypeAlias, cast

import aiohttp
import httptools
import orjson
import uvloop

SERVER_CODE = (
    "from batchgate.sim import SimConfig, run_simulator; run_simulator(SimConfig(), '127.0.0.1', 0)"
)
WARMUP_S = 1.0
# (ok, failed) per client process
ResultQueue: TypeAlias = "multiprocessing.queues.Queue[tuple[int, int]]"
BODY = orjson.dumps(
    {
        "model": "sim-model",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Summarise the plot of Hamlet in one sentence."},
        ],
        "max_tokens": 64,
    }
)


async def _load(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    """(ok, failed) requests completed in ``seconds`` after the warm-up."""
    ok = failed = 0
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter() + WARMUP_S
        end = start + seconds

        async def worker() -> None:
            nonlocal ok, failed
            while (now := time.perf_counter()) < end:
                async with session.post(url, data=BODY, headers=headers) as reply:
                    await reply.read()
                    if now >= start:
                        if reply.status == 200:
                            ok += 1
                        else:
                            failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, failed


class _RawClient(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as each reply is in:
    a far cheaper client than aiohttp, so that the simulator, not the client, saturates."""

    def __init__(
        self, request: bytes, start: float, end: float, done: asyncio.Future[None]
    ) -> None:
        self.request, self.start, self.end, self.done = request, start, end, done
        self.parser = httptools.HttpResponseParser(self)
        self.ok = self.failed = 0
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        self.sent_at = time.perf_counter()
        if self.sent_at >= self.end:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.sent_at >= self.start:
            if self.parser.get_status_code() == 200:
                self.ok += 1
            else:
                self.failed += 1
        self._send()


async def _load_raw(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    """Like ``_load``, with ``_RawClient`` connections."""
    parts = httptools.parse_url(url.encode())
    request = (
        b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (parts.path, parts.host, len(BODY), BODY)
    )
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + WARMUP_S
    end = start + seconds
    clients = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            functools.partial(_RawClient, request, start, end, done),
            parts.host.decode(),
            parts.port,
        )
        clients.append(client)
    await asyncio.gather(*(c.done for c in clients))
    return sum(c.ok for c in clients), sum(c.failed for c in clients)


def _client(
    url: str, seconds: float, concurrency: int, core: int, raw: bool, out: ResultQueue
) -> None:
    os.sched_setaffinity(0, {core})
    load = _load_raw if raw else _load
    out.put(uvloop.run(load(url, seconds, concurrency)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (Linux ``/proc``, like ``taskset`` itself)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(core: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), sys.executable, "-c", SERVER_CODE],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # "simulate listening on http://HOST:PORT"
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=128, help="in flight, in all")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument(
        "--client",
        choices=("aiohttp", "raw"),
        default="aiohttp",
        help="raw: a minimal asyncio+httptools client that can saturate the simulator",
    )
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0) - {args.server_core}) or [args.server_core]
    proc, base = _start_server(args.server_core)
    url = base + "/v1/chat/completions"
    try:
        out: ResultQueue = multiprocessing.Queue()
        per_client = max(1, args.concurrency // args.clients)
        clients = [
            multiprocessing.Process(
                target=_client,
                args=(
                    url,
                    args.seconds,
                    per_client,
                    cores[i % len(cores)],
                    args.client == "raw",
                    out,
                ),
            )
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        time.sleep(WARMUP_S)
        cpu_before = _cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        cpu_used = _cpu_seconds(proc.pid) - cpu_before
        results = [out.get(timeout=60) for _ in clients]
        for client in clients:
            client.join()
    finally:
        proc.terminate()
        proc.wait(10)

    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    rate = ok / args.seconds
    busy = cpu_used / args.seconds
    print(
        f"simulator: {rate:,.0f} requests/s (chat, {ok:,} ok, {failed} failed, "
        f"{args.clients} {args.client} client process(es) at concurrency {args.concurrency}, "
        f"{args.seconds:g} s)"
    )
    print(
        f"simulator CPU: {busy:.0%} of core {args.server_core} -> "
        f"capacity ~{rate / max(busy, 1e-9):,.0f} requests/s per fully busy core"
    )


if __name__ == "__main__":
    main()
