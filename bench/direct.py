"""The ceiling: a minimal direct loop over the same batch file, with no persistence.

aiohttp + uvloop + orjson; ``--concurrency`` worker coroutines take lines in order, POST each
line's ``body`` to the upstream and keep the replies in memory; at the end the results are
written as one output-shaped JSONL file. Timed from reading the input to the output written
(the work batchgate does between batch creation and ``completed``, minus the database).

Prints one JSON object on stdout: n, ok, failed, seconds, requests_per_s, cpu_s (user+sys of
this process over the timed part), peak_rss_mb (ru_maxrss, the whole process life).

    .venv/bin/python bench/direct.py --input FILE --url http://HOST:PORT/v1/chat/completions \
        --concurrency 256 [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(path: Path, base: str, concurrency: int, out: Path | None) -> dict[str, object]:
    cpu0, t0 = _cpu(), time.perf_counter()
    ids: list[str] = []
    bodies: list[bytes] = []
    urls: list[str] = []
    with path.open("rb") as src:
        for line in src:
            task = orjson.loads(line)
            ids.append(task["custom_id"])
            urls.append(base + task["url"].removeprefix("/v1"))
            bodies.append(orjson.dumps(task["body"]))
    n = len(bodies)
    statuses = [0] * n
    replies: list[bytes] = [b""] * n
    next_index = 0
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                try:
                    async with session.post(urls[i], data=bodies[i], headers=headers) as reply:
                        replies[i] = await reply.read()
                        statuses[i] = reply.status
                except aiohttp.ClientError as exc:
                    replies[i] = orjson.dumps({"error": str(exc)})

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if out is not None:
        with out.open("wb") as dst:
            for i in range(n):
                dst.write(
                    orjson.dumps(
                        {
                            "custom_id": ids[i],
                            "response": {
                                "status_code": statuses[i],
                                "body": orjson.Fragment(replies[i]),
                            },
                        },
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )
    seconds = time.perf_counter() - t0
    ok = sum(1 for s in statuses if s == 200)
    return {
        "n": n,
        "ok": ok,
        "failed": n - ok,
        "seconds": seconds,
        "requests_per_s": n / seconds,
        "cpu_s": _cpu() - cpu0,
        "cpu_total_s": _cpu(),  # the whole process, imports included
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--url", required=True, help="the upstream's base URL, …/v1")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="where to write the results")
    args = parser.parse_args()
    result = uvloop.run(run(args.input, args.url.rstrip("/"), args.concurrency, args.out))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
