"""Quickstart: a real batch end to end on the embedded default, driven by the official SDK.

Starts `batchgate simulate` (a stand-in model server) and `batchgate serve` (SQLite + a local
data directory), uploads examples/chat_batch.jsonl with the `openai` SDK, waits for the batch,
downloads its output and prints a summary. Everything is stopped at the end.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

HERE = Path(__file__).resolve().parent
INPUT = HERE / "chat_batch.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not become ready at {url}")


def run(data_dir: Path) -> None:
    batchgate = [sys.executable, "-m", "batchgate"]
    sim_port, api_port = free_port(), free_port()
    procs = []
    try:
        sim = subprocess.Popen(
            [*batchgate, "simulate", "--port", str(sim_port), "--latency-ms", "30",
             "--jitter-ms", "20", "--rate-429", "0.05", "--retry-after-s", "0.2"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(sim)
        wait_ready(f"http://127.0.0.1:{sim_port}/v1/models", sim, "simulator")
        server = subprocess.Popen(
            [*batchgate, "serve", "--port", str(api_port), "--data-dir", str(data_dir),
             "--upstream", f"http://127.0.0.1:{sim_port}/v1", "--concurrency", "32",
             "--log-level", "warning"],
        )  # fmt: skip
        procs.append(server)
        wait_ready(f"http://127.0.0.1:{api_port}/health", server, "batchgate serve")
        print(f"batchgate is serving on http://127.0.0.1:{api_port}/v1 (state in {data_dir})")
        submit(openai.OpenAI(base_url=f"http://127.0.0.1:{api_port}/v1", api_key="local"))
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=15)


def submit(client: openai.OpenAI) -> None:
    upload = client.files.create(file=INPUT, purpose="batch")
    print(f"uploaded {upload.filename} as {upload.id} ({upload.bytes} bytes)")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
        metadata={"example": "quickstart"},
    )  # fmt: skip
    print(f"created {batch.id}; waiting", end="", flush=True)
    started = time.monotonic()
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.25)
        batch = client.batches.retrieve(batch.id)
        print(".", end="", flush=True)
    elapsed = time.monotonic() - started
    print(f"\nbatch {batch.status} in {elapsed:.1f}s")
    if batch.status != "completed" or batch.output_file_id is None:
        sys.exit(f"unexpected end: {batch.model_dump_json(indent=2)}")
    summarize(client, batch, elapsed)


def summarize(client: openai.OpenAI, batch: openai.types.Batch, elapsed: float) -> None:
    assert batch.output_file_id is not None and batch.request_counts is not None
    lines = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    counts, usage = batch.request_counts, batch.usage
    print(f"requests: {counts.total} total, {counts.completed} completed, {counts.failed} failed")
    if usage is not None:
        print(f"tokens:   {usage.input_tokens} in, {usage.output_tokens} out")
    rate = counts.total / elapsed
    print(f"output:   {len(lines)} lines in {batch.output_file_id}; {rate:.0f} requests/s")
    for line in lines[:3]:
        reply = line["response"]["body"]["choices"][0]["message"]["content"]
        print(f"  {line['custom_id']}: {reply[:70].replace(chr(10), ' ')}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="batchgate-quickstart-") as tmp:
        run(Path(tmp))
