"""The one-shot runner's throughput: ``batchgate run`` (durable, resumable) against the direct
aiohttp loop, on the same N-line chat batch file and the same simulated upstream.

For each latency L and concurrency C: ``batchgate simulate --latency-ms L`` on core 0; the
direct loop (``bench/direct.py``, no persistence: the ceiling) and ``batchgate run INPUT -o
OUT --concurrency C`` (a fresh state directory each run), each on core 1, alternating which
goes first, ``--repeats`` times. batchgate's requests/s is N / the command's whole wall time
(interpreter start, state set-up, validation, every request, the output written and renamed);
its peak RSS is sampled every 0.1 s. The output is checked: N lines, all 200, and the
simulator saw exactly N requests. ``batchgate run`` holds each runner until its result is
committed (at most C requests unrecorded at any time), so this also prices that guarantee.

    .venv/bin/python bench/local_run.py --n 20000 --latencies 0,50 --concurrency 64,256 \
        --repeats 3 --out bench/results/local-run-20000.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import harness
import orjson
from run import run_direct

HERE = Path(__file__).resolve().parent


def run_batchgate(
    procs: harness.Processes, args: argparse.Namespace, input_path: Path, sim: Any, c: int
) -> dict[str, Any]:
    sim_proc, sim_v1 = sim
    harness.sim_reset(sim_v1)
    with harness.temp_dir("batchgate-bench-run-") as work:
        out = work / "out.jsonl"
        cmd = [
            harness.BATCHGATE, "run", str(input_path), "-o", str(out), "--upstream", sim_v1,
            "--concurrency", str(c), "--max-lines", str(args.n), "--max-file-mb", "1024",
        ]  # fmt: skip
        core0 = harness.core_busy_seconds(args.server_core)
        sim_cpu0, t0 = harness.cpu_seconds(sim_proc.pid), time.perf_counter()
        proc = procs.add(harness.start_pinned(cmd, args.server_core))
        with harness.RssSampler(proc.pid) as sampler:
            sampler.mark("run")
            cpu = 0.0
            while proc.poll() is None:
                cpu = max(cpu, _cpu(proc.pid))
                time.sleep(0.1)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"batchgate run exited {proc.returncode}")
        lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    ok = sum(1 for x in lines if (x.get("response") or {}).get("status_code") == 200)
    stats = harness.sim_stats(sim_v1)
    if len(lines) != args.n or ok != args.n or stats["requests"] != args.n:
        raise SystemExit(f"{len(lines)} lines, {ok} ok, {stats['requests']} sent; want {args.n}")
    return {
        "seconds": wall,
        "requests_per_s": args.n / wall,
        "cpu_s_at_least": cpu,  # the last sample before exit: a lower bound
        "peak_rss_mb": sampler.peak_mb,
        "sim_cpu_share": (harness.cpu_seconds(sim_proc.pid) - sim_cpu0) / wall,
        "others_on_core": max(0.0, harness.core_busy_seconds(args.server_core) - core0 - cpu)
        / wall,
        "sim_requests": stats["requests"],
    }


def _cpu(pid: int) -> float:
    try:
        return harness.cpu_seconds(pid)
    except Exception:  # it exited between poll() and the read
        return 0.0


def run_case(
    procs: harness.Processes, args: argparse.Namespace, input_path: Path, sim: Any,
    latency: float, c: int, work: Path,
) -> dict[str, Any]:  # fmt: skip
    direct: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    for i in range(args.repeats):
        order = ("direct", "batchgate") if i % 2 == 0 else ("batchgate", "direct")
        for side in order:
            if side == "direct":
                direct.append(run_direct(procs, args, input_path, sim, c, work))
            else:
                ours.append(run_batchgate(procs, args, input_path, sim, c))
            rate = (direct if side == "direct" else ours)[-1]["requests_per_s"]
            print(f"  L={latency:g} C={c} {side}: {rate:,.0f} req/s", flush=True)
    d = harness.summary([r["requests_per_s"] for r in direct])
    b = harness.summary([r["requests_per_s"] for r in ours])
    return {
        "latency_ms": latency, "concurrency": c, "direct_runs": direct, "batchgate_runs": ours,
        "direct_requests_per_s": d, "batchgate_requests_per_s": b,
        "batchgate_peak_rss_mb": harness.summary([r["peak_rss_mb"] for r in ours]),
        "ratio": b["median"] / d["median"],
    }  # fmt: skip


def table(cases: list[dict[str, Any]]) -> str:
    rows = [
        "| L (ms) | C | direct req/s | `batchgate run` req/s (whole command) | ratio "
        "| bg peak RSS MB | others on the measured core (bg) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in cases:
        others = harness.summary([r["others_on_core"] for r in k["batchgate_runs"]])["median"]
        rows.append(
            f"| {k['latency_ms']:g} | {k['concurrency']} "
            f"| {harness.fmt_range(k['direct_requests_per_s'])} "
            f"| {harness.fmt_range(k['batchgate_requests_per_s'])} | **{k['ratio']:.2f}** "
            f"| {harness.fmt_range(k['batchgate_peak_rss_mb'], '{:.0f}')} | {others:.0%} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--latencies", default="0,50")
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="per direct run, s")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "local-run.json")
    args = parser.parse_args()
    args.latency_list = [float(x) for x in args.latencies.split(",")]
    args.concurrency_list = [int(x) for x in args.concurrency.split(",")]
    harness.pin_self(args.sim_core)
    info = harness.machine()
    cases = harness.sweep(args, run_case)
    info["load_avg_end"] = harness.loadavg()
    result = {"benchmark": "bench/local_run.py", "command": " ".join(sys.argv),
              "machine": info, "n": args.n, "cases": cases}  # fmt: skip
    harness.write_results(args.out, result, table(cases))


if __name__ == "__main__":
    main()
