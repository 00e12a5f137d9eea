"""Issue 11's field targets: ``batchgate run`` against an upstream that misbehaves.

Each case runs the one-shot ``batchgate run INPUT -o OUTPUT --upstream SIM --concurrency C``
(a fresh state directory each run, pinned to core 1) against ``batchgate simulate`` (pinned
to core 0, beside this driver, which mostly sleeps), on an N-line chat batch file, polling
``GET /_sim/stats`` every 0.25 s. req/s is the lines answered 200 / the command's whole wall
time (N / wall when all succeed: a run that gives lines up is not fast). Every run has a hard
time limit (``--time-limit``): a run past it is stopped and reported as "did not
finish", never waited for.

* ``429``: L = 400 ± 200 ms, C = 64, N = 3,000; once fault-free and once with 5 % of requests
  answered 429 (Retry-After 1 s), one simulator reconfigured live between the two. Target:
  faulty req/s >= 0.85 x fault-free req/s, and every output line a 200.
* ``overload``: ``--overload 32`` at L = 200 ms (so at most 160 req/s), C = 128, N = 4,000.
  Targets: req/s >= 0.85 x 160; of the upstream's answers after the first 10 s, <= 10 % 429.
* ``headers``: ``--rpm-limit 1200 --rpm-burst 20`` (20 req/s, announced in
  ``x-ratelimit-*`` headers), L = 50 ms, C = 64, N = 600, batchgate given no ``--rpm``.
  Targets: req/s >= 0.9 x 20; <= 2 % of the upstream's answers 429.
* ``outage``: L = 100 ms, C = 64, N = 5,000; once a third of the rows are answered 200 the
  simulator is SIGKILLed, and 30 s later a new one starts on the same port. Targets: every
  line a 200, no row given up with its attempts exhausted, and the completion rate (200s per
  second over a sliding 1 s window of the stats samples) back to >= 0.9 x its rate before the
  kill within 5 s of the new simulator answering.

    .venv/bin/python bench/faults.py [--case 429,overload,headers,outage] [--repeats 1] \\
        [--n 500 | --n 429=300,outage=1000] [--out bench/results/faults.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import orjson

HERE = Path(__file__).resolve().parent
CASES = ("429", "overload", "headers", "outage")
DEFAULT_N = {"429": 3000, "overload": 4000, "headers": 600, "outage": 5000}
SAMPLE_S = 0.25
RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}  # a final row with one: retries ran out
Sample = tuple[float, dict[str, Any] | None]  # (seconds since the run started, sim stats)


# -- one `batchgate run` ---------------------------------------------------------------------


def run_batchgate(
    procs: harness.Processes, args: argparse.Namespace, input_path: Path, sim_v1: str, c: int,
    on_sample: Callable[[float, dict[str, Any] | None], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run ``batchgate run`` on ``input_path`` until it exits or ``args.time_limit`` passes,
    sampling the simulator's stats (``on_sample`` sees each sample: the outage case acts on
    them); then read the output. ``finished`` is False for a run stopped at the limit."""
    n = _count_lines(input_path)
    with harness.temp_dir("batchgate-bench-faults-") as work:
        out, log = work / "out.jsonl", work / "run.log"
        cmd = [
            harness.BATCHGATE, "run", str(input_path), "-o", str(out), "--upstream", sim_v1,
            "--concurrency", str(c),
        ]  # fmt: skip
        core0 = harness.core_busy_seconds(args.server_core)
        t0 = time.perf_counter()
        with log.open("wb") as log_file:
            fd = log_file.fileno()
            proc = procs.add(harness.start_pinned(cmd, args.server_core, stdout=fd, stderr=fd))
        samples: list[Sample] = []
        cpu = 0.0
        while time.perf_counter() - t0 < args.time_limit:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(SAMPLE_S)  # returns at once when it exits: the wall time is exact
                break
            cpu = max(cpu, _cpu(proc.pid))
            sample = (time.perf_counter() - t0, _stats(sim_v1))
            samples.append(sample)
            if on_sample is not None:
                on_sample(*sample)
        wall = time.perf_counter() - t0
        finished = proc.poll() is not None
        procs.stop(proc)
        samples.append((time.perf_counter() - t0, _stats(sim_v1)))  # the end, for the counts
        others = max(0.0, harness.core_busy_seconds(args.server_core) - core0 - cpu) / wall
        if finished and proc.returncode != 0:
            print(log.read_text()[-2000:], file=sys.stderr)
        lines = _read_output(out) if finished and out.exists() else []
    result = _tally(lines, n)
    result.update(
        finished=finished, returncode=proc.returncode if finished else None,
        seconds=wall if finished else None,
        requests_per_s=n / wall if finished else None, time_limit_s=args.time_limit,
        ok_per_s=result["ok"] / wall if finished else None,
        cpu_s_at_least=cpu, others_on_core=others, samples=[_compact(s) for s in samples],
    )  # fmt: skip
    return result


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _cpu(pid: int) -> float:
    try:
        return harness.cpu_seconds(pid)
    except Exception:  # it exited between poll() and the read
        return 0.0


def _stats(sim_v1: str) -> dict[str, Any] | None:
    try:
        return harness.sim_stats(sim_v1)
    except (OSError, ValueError):  # down (the outage case) or busy
        return None


def _read_output(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _tally(lines: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Counts over the output lines: 200s, final statuses and errors, and the rows given up
    with their attempts exhausted (a connection/timeout error saying "Gave up after", or a
    final answer whose status is a retryable one)."""
    statuses: Counter[str] = Counter()
    exhausted = 0
    for line in lines:
        response, error = line.get("response"), line.get("error")
        if response is not None:
            statuses[str(response["status_code"])] += 1
            exhausted += response["status_code"] in RETRYABLE
        else:
            code = (error or {}).get("code", "?")
            statuses[f"error:{code}"] += 1
            exhausted += "Gave up after" in (error or {}).get("message", "")
    ok = statuses.get("200", 0)
    return {"n": n, "lines": len(lines), "ok": ok, "all_200": ok == n == len(lines),
            "exhausted": exhausted, "statuses": dict(statuses)}  # fmt: skip


def _compact(sample: Sample) -> list[Any]:
    """[t, requests, answers, 200s, 429s] of one stats sample (None while the sim is down)."""
    t, stats = sample
    if stats is None:
        return [round(t, 3), None, None, None, None]
    by = stats["by_status"]
    return [round(t, 3), stats["requests"], sum(by.values()), by.get("200", 0), by.get("429", 0)]


def _share_429(samples: list[list[Any]], after_s: float) -> float | None:
    """429s as a share of the simulator's answers between the first sample at ``after_s`` or
    later and the last sample (taken once the run has ended)."""
    live = [s for s in samples if s[1] is not None]
    start = next((s for s in live if s[0] >= after_s), None)
    if start is None:
        return None
    answers = live[-1][2] - start[2]
    return (live[-1][4] - start[4]) / answers if answers > 0 else None


def _stats_share_429(stats: dict[str, Any]) -> float | None:
    """429s as a share of all the simulator's answers since its last reset."""
    answers = sum(stats["by_status"].values())
    return stats["by_status"].get("429", 0) / answers if answers else None


# -- the simulator ---------------------------------------------------------------------------


def configure(sim_v1: str, **changes: Any) -> None:
    harness.http("POST", sim_v1.removesuffix("/v1") + "/_sim/config", orjson.dumps(changes))


def kill9(procs: harness.Processes, proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the simulator's process group (no clean shutdown: an outage)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc in procs.procs:
        procs.procs.remove(proc)


# -- the cases -------------------------------------------------------------------------------


def case_429(procs: harness.Processes, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    input_path = _input(work, args.n_of["429"])
    sim, sim_v1 = harness.start_simulator(procs, 400, args.sim_core, extra=["--jitter-ms", "200"])
    runs: dict[str, list[dict[str, Any]]] = {"fault-free": [], "rate_429=0.05": []}
    try:
        for i in range(args.repeats):
            order = list(runs) if i % 2 == 0 else list(reversed(runs))
            for side in order:
                configure(sim_v1, rate_429=0.05 if side != "fault-free" else 0.0)
                harness.sim_reset(sim_v1)
                run = run_batchgate(procs, args, input_path, sim_v1, 64)
                run["sim"] = harness.sim_stats(sim_v1)
                runs[side].append(run)
                _say("429", side, run)
    finally:
        procs.stop(sim)
    plain, faulty = (_median(runs[k], "ok_per_s") for k in runs)
    ratio = faulty / plain if plain and faulty else None
    all_200 = all(r["all_200"] for rs in runs.values() for r in rs)
    return {"runs": runs, "fault_free_requests_per_s": plain, "faulty_requests_per_s": faulty,
            "ratio": ratio, "all_200": all_200,
            "met": ratio is not None and ratio >= 0.85 and all_200}  # fmt: skip


def case_overload(procs: harness.Processes, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    input_path = _input(work, args.n_of["overload"])
    extra = ["--overload", "32"]
    sim, sim_v1 = harness.start_simulator(procs, 200, args.sim_core, extra=extra)
    runs = []
    try:
        for _ in range(args.repeats):
            harness.sim_reset(sim_v1)
            run = run_batchgate(procs, args, input_path, sim_v1, 128)
            run["share_429_after_10s"] = _share_429(run["samples"], 10.0)
            run["sim"] = harness.sim_stats(sim_v1)
            run["share_429"] = _stats_share_429(run["sim"])
            runs.append(run)
            _say("overload", "", run, f"429 after 10 s {_pct(run['share_429_after_10s'])}")
    finally:
        procs.stop(sim)
    rate = _median(runs, "ok_per_s")
    share = _median(runs, "share_429_after_10s")
    met = rate is not None and rate >= 0.85 * 160 and share is not None and share <= 0.10
    return {"runs": runs, "requests_per_s": rate, "of_ceiling": rate / 160 if rate else None,
            "share_429_after_10s": share, "met": met}  # fmt: skip


def case_headers(procs: harness.Processes, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    input_path = _input(work, args.n_of["headers"])
    extra = ["--rpm-limit", "1200", "--rpm-burst", "20"]
    sim, sim_v1 = harness.start_simulator(procs, 50, args.sim_core, extra=extra)
    runs = []
    try:
        for _ in range(args.repeats):
            configure(sim_v1, rpm_limit=0)  # a fresh bucket for every run
            configure(sim_v1, rpm_limit=1200)
            harness.sim_reset(sim_v1)
            run = run_batchgate(procs, args, input_path, sim_v1, 64)
            run["sim"] = harness.sim_stats(sim_v1)
            run["share_429"] = _stats_share_429(run["sim"])
            runs.append(run)
            _say("headers", "", run, f"429 share {_pct(run['share_429'])}")
    finally:
        procs.stop(sim)
    rate = _median(runs, "ok_per_s")
    share = _median(runs, "share_429")
    met = rate is not None and rate >= 0.9 * 20 and share is not None and share <= 0.02
    return {"runs": runs, "requests_per_s": rate, "of_limit": rate / 20 if rate else None,
            "share_429": share, "met": met}  # fmt: skip


class Outage:
    """The outage case's script, driven by the stats samples: kill the simulator once a third
    of the rows are answered 200, start a new one on the same port ``down_s`` later."""

    def __init__(self, procs: harness.Processes, args: argparse.Namespace, sim: Any, n: int):
        self.procs, self.args, self.n = procs, args, n
        self.sim, self.sim_v1 = sim
        self.port = int(self.sim_v1.rsplit(":", 1)[1].split("/")[0])
        self.down_s = args.down_s
        self.killed_at: float | None = None
        self.back_at: float | None = None
        self.ok_at_kill = 0
        self.ok_at_start: tuple[float, int] | None = None  # the first sample past N/10 done

    def __call__(self, t: float, stats: dict[str, Any] | None) -> None:
        if self.killed_at is None and stats is not None:
            ok = stats["by_status"].get("200", 0)
            if self.ok_at_start is None and ok >= self.n / 10:
                self.ok_at_start = (t, ok)
            if ok >= self.n / 3:
                kill9(self.procs, self.sim)
                self.killed_at, self.ok_at_kill = t, ok
                print(f"  outage: simulator killed at {t:.1f} s ({ok} rows done)", flush=True)
        elif self.killed_at is not None and self.back_at is None:
            if t < self.killed_at + self.down_s:
                return
            called = time.perf_counter()
            self.sim, _ = harness.start_simulator(
                self.procs, 100, self.args.sim_core, port=self.port
            )
            self.back_at = t + time.perf_counter() - called  # answering /health
            print(f"  outage: new simulator answering at {self.back_at:.1f} s", flush=True)

    def before_rate(self) -> float | None:
        if self.ok_at_start is None or self.killed_at is None:
            return None
        t, ok = self.ok_at_start
        return (self.ok_at_kill - ok) / (self.killed_at - t) if self.killed_at > t else None

    def recovery_s(self, samples: list[list[Any]], before: float) -> float | None:
        """Seconds from the new simulator answering to the end of the first 1 s window (of
        the samples) whose 200s per second reach 0.9 x ``before``."""
        if self.back_at is None:
            return None
        after = [s for s in samples if s[0] >= self.back_at and s[1] is not None]
        for i, sample in enumerate(after):
            t = sample[0]
            first = next(s for s in after[: i + 1] if s[0] >= t - 1.0)
            if t - first[0] >= 0.75 and (sample[3] - first[3]) / (t - first[0]) >= 0.9 * before:
                return t - self.back_at
        return None


def case_outage(procs: harness.Processes, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.n_of["outage"]
    input_path = _input(work, n)
    runs = []
    for _ in range(args.repeats):
        outage = Outage(procs, args, harness.start_simulator(procs, 100, args.sim_core), n)
        try:
            run = run_batchgate(procs, args, input_path, outage.sim_v1, 64, on_sample=outage)
        finally:
            procs.stop(outage.sim)
        before = outage.before_rate()
        run.update(
            killed_at_s=outage.killed_at, back_at_s=outage.back_at, done_at_kill=outage.ok_at_kill,
            rate_before_kill=before,
            recovery_s=outage.recovery_s(run["samples"], before) if before else None,
        )  # fmt: skip
        runs.append(run)
        _say("outage", "", run, f"exhausted {run['exhausted']}, recovery {_s(run['recovery_s'])}")
    recoveries = [r["recovery_s"] for r in runs]
    met = all(
        r["all_200"] and r["exhausted"] == 0 and r["recovery_s"] is not None
        and r["recovery_s"] <= 5.0 for r in runs
    )  # fmt: skip
    return {"runs": runs, "recovery_s": recoveries, "met": met}


CASE_FUNCS = {"429": case_429, "overload": case_overload, "headers": case_headers,
              "outage": case_outage}  # fmt: skip


# -- helpers and tables ----------------------------------------------------------------------


def _input(work: Path, n: int) -> Path:
    path = work / f"input-{n}.jsonl"
    if not path.exists():
        harness.write_input(path, n)
    return path


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values and len(values) == len(runs) else None


def _rate(x: float | None) -> str:
    return "did not finish" if x is None else f"{x:,.1f}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} s"


def _say(case: str, side: str, run: dict[str, Any], extra: str = "") -> None:
    label = f"{case} {side}".strip()
    print(f"  {label}: {_rate(run['ok_per_s'])} req/s (200s), {run['ok']}/{run['n']} ok"
          + (f", {extra}" if extra else ""), flush=True)  # fmt: skip


def _runs_cell(runs: list[dict[str, Any]]) -> str:
    """Each run's 200s per second and how many of its lines were 200."""
    return ", ".join(f"{_rate(r['ok_per_s'])} ({r['ok']}/{r['n']} ok)" for r in runs)


def table(results: dict[str, Any]) -> str:
    rows = ["| case | figure (median; each run) | target | met |", "|---|---|---|---|"]
    if (k := results.get("429")) is not None:
        rows.append(
            f"| 429 | req/s fault-free {_runs_cell(k['runs']['fault-free'])}; with 5 % 429 "
            f"{_runs_cell(k['runs']['rate_429=0.05'])}; ratio {_ratio(k['ratio'])}; "
            f"all lines 200: "
            f"{k['all_200']} | ratio >= 0.85, all 200 | {_met(k)} |"
        )
    if (k := results.get("overload")) is not None:
        rows.append(
            f"| overload | req/s {_runs_cell(k['runs'])} (of 160: "
            f"{_pct(k['of_ceiling'])}); 429 share after 10 s "
            f"{', '.join(_pct(r['share_429_after_10s']) for r in k['runs'])} (overall "
            f"{', '.join(_pct(r['share_429']) for r in k['runs'])}) "
            f"| >= 136 req/s, <= 10 % | {_met(k)} |"
        )
    if (k := results.get("headers")) is not None:
        rows.append(
            f"| headers | req/s {_runs_cell(k['runs'])} (of 20: {_pct(k['of_limit'])}); "
            f"429 share {', '.join(_pct(r['share_429']) for r in k['runs'])} "
            f"| >= 18 req/s, <= 2 % | {_met(k)} |"
        )
    if (k := results.get("outage")) is not None:
        for r in k["runs"]:
            rows.append(
                f"| outage | {r['ok']}/{r['n']} lines 200 ({_statuses(r)}); exhausted "
                f"{r['exhausted']}; rate before kill {_rate(r['rate_before_kill'])}/s; "
                f"recovery {_recovery(r)} "
                f"| all 200, 0 exhausted, <= 5 s | {_met(k)} |"
            )
    return "\n".join(rows)


def _recovery(run: dict[str, Any]) -> str:
    if not run["finished"]:
        return "— (did not finish)"
    if run["back_at_s"] is None:
        return "— (the run ended before the simulator came back)"
    return _s(run["recovery_s"]) if run["recovery_s"] is not None else "— (never back to 0.9x)"


def _statuses(run: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(run["statuses"].items())) or "no output"


def _met(case: dict[str, Any]) -> str:
    return "**met**" if case["met"] else "**not met**"


def _parse_n(text: str | None) -> dict[str, int]:
    n = dict(DEFAULT_N)
    if not text:
        return n
    for part in text.split(","):
        name, _, value = part.rpartition("=")
        if name and name not in CASES:
            raise SystemExit(f"--n: unknown case {name!r} (cases: {', '.join(CASES)})")
        for case in [name] if name else CASES:
            n[case] = int(value)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n", help="rows for every case (500) or per case (429=300,outage=900)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="per run, s")
    parser.add_argument("--down-s", type=float, default=30.0, help="outage length, s")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "faults.json")
    args = parser.parse_args()
    cases = [c.strip() for c in args.case.split(",") if c.strip()]
    if unknown := sorted(set(cases) - set(CASES)):
        raise SystemExit(f"--case: unknown {', '.join(unknown)} (cases: {', '.join(CASES)})")
    args.n_of = _parse_n(args.n)
    harness.pin_self(args.sim_core)
    info = harness.machine()
    results: dict[str, Any] = {}
    with harness.Processes() as procs, harness.temp_dir("batchgate-bench-faults-in-") as work:
        for case in cases:
            print(f"{case} (N = {args.n_of[case]:,}):", flush=True)
            results[case] = CASE_FUNCS[case](procs, args, work)
    info["load_avg_end"] = harness.loadavg()
    record = {"benchmark": "bench/faults.py", "command": " ".join(sys.argv), "machine": info,
              "n": {c: args.n_of[c] for c in cases}, "cases": results}  # fmt: skip
    harness.write_results(args.out, record, table(results))


if __name__ == "__main__":
    main()
