"""What a budget costs in throughput: the same priced batch through ``batchgate serve`` with and
without a batch budget that is never reached, in one run.

Both sides serve one provider, the simulator, with prices (so every row has a reservation and
every result a cost), from a config file with the case's concurrency. The budget side creates
its batch with ``budget_usd`` far above what the batch costs, so nothing is stopped and only
the budget path's overhead shows: the lock and headroom query on every lease, the lease in
two statements. Each case runs ``--repeats`` times, the two sides alternating which goes
first; the ratio is median budget req/s over median priced req/s. Figures are measured as in
``run.py`` (see ``bench/README.md``).

    .venv/bin/python bench/budget.py --n 20000 --latencies 0,50 --concurrency 64,256 \\
        --repeats 3 --out bench/results/budget-20000.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import harness
import run

HERE = Path(__file__).resolve().parent
BUDGET = {"budget_usd": "1000"}  # the batch costs well under a dollar: never reached
SIDES = ("priced", "budget")


def config_file(work: Path, sim_v1: str, c: int) -> Path:
    path = work / f"priced-{c}.toml"
    path.write_text(
        f'default = "sim"\n[providers.sim]\nurl = "{sim_v1}"\nconcurrency = {c}\n'
        'prices = { "*" = { input = 0.15, output = 0.60 } }\n'
    )
    return path


def run_case(
    procs: harness.Processes, args: argparse.Namespace, input_path: Path, sim: Any,
    latency: float, c: int, work: Path,
) -> dict[str, Any]:  # fmt: skip
    config = config_file(work, sim[1], c)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for r in range(args.repeats):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            extra = BUDGET if side == "budget" else None
            res = run.run_batchgate(
                procs, args, input_path, sim, c, None, config=config, create_extra=extra
            )
            runs[side].append(res)
            print(
                f"  L={latency:g}ms C={c} run {r + 1}/{args.repeats} {side:7s} "
                f"{res['requests_per_s']:8,.0f} req/s  cpu {res['cpu_ms_per_request']:.3f} "
                f"ms/req  rss {res['peak_rss_mb']:6.1f}MB  sim cpu {res['sim_cpu_share']:.0%}  "
                f"others on core {args.server_core} {res['others_on_core']:.0%}",
                flush=True,
            )
    case: dict[str, Any] = {"latency_ms": latency, "concurrency": c, "runs": runs}
    for side in SIDES:
        case[side] = {
            key: harness.summary([x[key] for x in runs[side]])
            for key in ("requests_per_s", "cpu_ms_per_request", "peak_rss_mb", "others_on_core")
        }
    case["ratio"] = (
        case["budget"]["requests_per_s"]["median"] / case["priced"]["requests_per_s"]["median"]
    )
    return case


def table(cases: list[dict[str, Any]]) -> str:
    rows = [
        "| L (ms) | C | priced req/s | with a budget req/s | ratio "
        "| CPU ms/req (priced / budget) | others on the measured core (priced / budget) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in cases:
        p, b = k["priced"], k["budget"]
        rows.append(
            f"| {k['latency_ms']:g} | {k['concurrency']} "
            f"| {harness.fmt_range(p['requests_per_s'])} "
            f"| {harness.fmt_range(b['requests_per_s'])} "
            f"| **{k['ratio']:.2f}** "
            f"| {p['cpu_ms_per_request']['median']:.3f} / {b['cpu_ms_per_request']['median']:.3f} "
            f"| {p['others_on_core']['median']:.0%} / {b['others_on_core']['median']:.0%} |"
        )
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    args = run.sweep_args(run.sweep_parser(__doc__.split("\n")[0]))
    args.out = args.out or HERE / "results" / "budget.json"
    return args


def main() -> None:
    args = parse_args()
    harness.pin_self(args.sim_core)
    info = harness.machine()
    print(
        f"budget bench: N={args.n:,} latencies={args.latencies} C={args.concurrency} "
        f"repeats={args.repeats} on {info['nproc']} x {info['cpu_model']}",
        flush=True,
    )
    started = time.perf_counter()
    cases = harness.sweep(args, run_case)
    info["load_avg_end"] = harness.loadavg()
    result = {
        "benchmark": "bench/budget.py",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "n": args.n,
        "repeats": args.repeats,
        "total_s": time.perf_counter() - started,
        "cases": cases,
    }
    harness.write_results(args.out, result, table(cases))


if __name__ == "__main__":
    main()
