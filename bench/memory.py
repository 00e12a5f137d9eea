"""Peak server RSS for a large batch, and whether it grows with N.

For each N in ``--n`` (comma-separated): a fresh ``batchgate serve --max-lines 2000000
--max-file-mb 1024 --concurrency 256`` (SQLite, pinned to core 1) against the 0 ms simulator
(core 0). The input file is generated streaming, uploaded with the official ``openai`` SDK from
an open file (streamed, never read whole by this driver), the batch is created and polled, and
the output is downloaded streaming while its lines are counted. The server's RSS is sampled
every 0.1 s and attributed to the phase the batch is in (upload, validating, in_progress,
finalizing, download); VmHWM, the kernel's own peak, is read at the end.

    .venv/bin/python bench/memory.py --n 100000            # ~1 min
    .venv/bin/python bench/memory.py --n 100000,1000000    # the 1M run: disk ~2 GB, ~10 min
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

import harness
import openai
import orjson
import psutil

HERE = Path(__file__).resolve().parent
TERMINAL = ("completed", "failed", "expired", "cancelled")
SERVER_FLAGS = ("--max-lines", "2000000", "--max-file-mb", "1024")


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run_one(
    procs: harness.Processes, args: argparse.Namespace, n: int, sim_v1: str, work: Path
) -> dict[str, Any]:
    input_path = work / f"input-{n}.jsonl"
    t = time.perf_counter()
    size = harness.write_input(input_path, n)
    print(f"N={n:,}: input {size / 2**20:,.0f} MB written in {time.perf_counter() - t:.1f}s")
    harness.sim_reset(sim_v1)
    with harness.temp_dir("batchgate-memory-") as data_dir:
        server, base = harness.start_server(
            procs, data_dir=data_dir, upstream=sim_v1, concurrency=args.concurrency,
            core=args.server_core, extra=SERVER_FLAGS,
        )  # fmt: skip
        try:
            idle_mb = psutil.Process(server.pid).memory_info().rss / 2**20
            client = openai.OpenAI(base_url=base, api_key="bench", max_retries=0, timeout=3600)
            phases: dict[str, float] = {}
            with harness.RssSampler(server.pid) as sampler:
                sampler.mark("upload")
                t0 = time.perf_counter()
                with input_path.open("rb") as f:
                    upload = client.files.create(file=f, purpose="batch")
                t_create = time.perf_counter()
                phases["upload"] = t_create - t0
                batch = client.batches.create(
                    input_file_id=upload.id, endpoint="/v1/chat/completions",
                    completion_window="24h",
                )  # fmt: skip
                sampler.mark(batch.status)
                seen = time.perf_counter()
                deadline = time.monotonic() + args.timeout
                while batch.status not in TERMINAL:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"N={n}: not done in {args.timeout}s: {batch.status}")
                    time.sleep(args.poll)
                    batch = client.batches.retrieve(batch.id)
                    if batch.status != sampler.phase:
                        now = time.perf_counter()
                        phases[sampler.phase] = phases.get(sampler.phase, 0.0) + now - seen
                        sampler.mark(batch.status)
                        seen = now
                t_done = time.perf_counter()
                if batch.status != "completed" or batch.output_file_id is None:
                    raise SystemExit(f"N={n}: batch ended {batch.status}: {batch.errors}")
                sampler.mark("download")
                lines, ok = _count_output(client, batch.output_file_id)
                t_down = time.perf_counter()
                phases["download"] = t_down - t_done
            hwm = harness.vm_hwm_mb(server.pid)
            disk = _dir_mb(data_dir)
        finally:
            procs.stop(server)
    input_path.unlink()
    if lines != n or ok != n:
        raise SystemExit(f"N={n}: output has {lines} lines, {ok} ok; expected {n}")
    return {
        "n": n,
        "input_mb": size / 2**20,
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": sampler.peak_mb,
        "peak_rss_mb_by_phase": sampler.by_phase,
        "vm_hwm_mb": hwm,
        "rss_samples": sampler.samples,
        "phase_s": phases,
        "create_to_completed_s": t_done - t_create,
        "requests_per_s": n / (t_done - t_create),
        "end_to_end_s": t_down - t0,
        "output_lines": lines,
        "data_dir_mb": disk,
    }


def _count_output(client: openai.OpenAI, file_id: str) -> tuple[int, int]:
    """(lines, lines with status 200), streamed: the output is never held whole."""
    lines = ok = 0
    with client.files.with_streaming_response.content(file_id) as reply:
        for line in reply.iter_lines():
            if line:
                lines += 1
                ok += orjson.loads(line)["response"]["status_code"] == 200
    return lines, ok


def table(runs: list[dict[str, Any]]) -> str:
    rows = [
        "| N | input MB | idle RSS MB | peak RSS MB (VmHWM) | upload | validating | "
        "in_progress | finalizing | download | creation→completed s | req/s | data dir MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        by = r["peak_rss_mb_by_phase"]
        cells = [
            f"{by[p]:.0f} MB / {r['phase_s'].get(p, 0):.1f}s" if p in by else "—"
            for p in ("upload", "validating", "in_progress", "finalizing", "download")
        ]
        rows.append(
            f"| {r['n']:,} | {r['input_mb']:,.0f} | {r['idle_rss_mb']:.0f} "
            f"| **{r['peak_rss_mb']:.0f}** ({r['vm_hwm_mb']:.0f}) | " + " | ".join(cells) + " "
            f"| {r['create_to_completed_s']:.1f} | {r['requests_per_s']:,.0f} "
            f"| {r['data_dir_mb']:,.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="1000000", help="batch sizes, comma-separated")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per batch, s")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="results JSON file")
    args = parser.parse_args()
    sizes = [int(x) for x in args.n.split(",")]
    if args.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = HERE / "results" / f"memory-{'-'.join(map(str, sizes))}-{stamp}.json"
    harness.pin_self(args.sim_core)
    info = harness.machine()
    print(f"batchgate memory bench: N={sizes} on {info['nproc']} x {info['cpu_model']}")
    runs = []
    with harness.Processes() as procs, harness.temp_dir("batchgate-memory-input-") as work:
        _, sim_v1 = harness.start_simulator(procs, 0, args.sim_core)
        for n in sizes:
            run = run_one(procs, args, n, sim_v1, work)
            print(
                f"N={n:,}: peak RSS {run['peak_rss_mb']:.0f} MB (VmHWM {run['vm_hwm_mb']:.0f}), "
                f"{run['requests_per_s']:,.0f} req/s, {run['end_to_end_s']:.1f}s end to end",
                flush=True,
            )
            runs.append(run)
    info["load_avg_end"] = harness.loadavg()
    result = {
        "benchmark": "bench/memory.py",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "server_flags": [*SERVER_FLAGS, "--concurrency", str(args.concurrency)],
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print()
    print(table(runs))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
