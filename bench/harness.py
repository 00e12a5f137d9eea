"""Shared pieces of the benchmarks: pinned subprocesses (cleaned up as whole process groups),
the simulator and ``batchgate serve``, the input file, RSS/CPU sampling and the machine record.

Not a benchmark itself; ``run.py`` and ``memory.py`` import it (they run as scripts, so this
directory is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import importlib.metadata
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

BIN = Path(sys.executable).parent
BATCHGATE = str(BIN / "batchgate")
PY_SPY = BIN / "py-spy"
LIBRARIES = ("aiohttp", "uvloop", "orjson", "sqlalchemy", "uvicorn", "starlette", "openai")

SYSTEM_PROMPT = "You are a helpful assistant."
PROMPTS = (
    "Summarise the plot of Hamlet in one sentence.",
    "Explain black holes for a ten-year-old.",
    "Give three tips for writing clear commit messages.",
    "What is the difference between a list and a tuple in Python?",
)


# -- the input file ----------------------------------------------------------------------------


def write_input(path: Path, n: int) -> int:
    """Write ``n`` chat batch lines to ``path``, streaming (never the whole file in memory).
    Returns the file size in bytes."""
    chunk: list[bytes] = []
    with path.open("wb") as out:
        for i in range(n):
            line = {
                "custom_id": f"req-{i:08d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "sim-model",
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} (#{i})"},
                    ],
                    "max_tokens": 64,
                },
            }
            chunk.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
    return path.stat().st_size


# -- processes ---------------------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_self(core: int) -> None:
    """Pin the calling process (the driver) to ``core``."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {core})


def start_pinned(
    cmd: Sequence[str], core: int, *, stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = None,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """``taskset -c CORE cmd…`` in a new session (its own process group, so ``stop`` can end
    it and anything it started). ``taskset`` execs, so the pid is the command's."""
    return subprocess.Popen(
        ["taskset", "-c", str(core), *cmd],
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the driver dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL it if it has not gone after ``timeout`` seconds."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    else:  # the leader is gone; anything it left in its group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


class Processes:
    """Every subprocess a benchmark starts, stopped (newest first) by ``close``."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def add(self, proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any]) -> None:
        stop(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        while self.procs:
            stop(self.procs.pop())

    def __enter__(self) -> Processes:
        # SIGTERM (e.g. from `timeout`) and SIGHUP end the driver through its finally blocks
        # too; Ctrl+C does even where the shell started us with SIGINT ignored (background).
        signal.signal(signal.SIGTERM, _raise_exit)
        signal.signal(signal.SIGHUP, _raise_exit)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return orjson.loads(reply.read())


def wait_ready(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early with code {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            http("GET", url, timeout=1.0)
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not become ready at {url}")


def start_simulator(
    procs: Processes, latency_ms: float, core: int, *, extra: Sequence[str] = (),
    port: int | None = None,
) -> tuple[subprocess.Popen[Any], str]:  # fmt: skip
    """``batchgate simulate`` pinned to ``core`` (``extra``: more of its flags, e.g. faults;
    ``port``: a given one, e.g. to restart on the same address); returns it and its ``…/v1``
    base URL once ``/health`` answers."""
    port = port or free_port()
    cmd = [
        BATCHGATE, "simulate", "--port", str(port), "--latency-ms", f"{latency_ms:g}", *extra,
    ]  # fmt: skip
    proc = procs.add(start_pinned(cmd, core))
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health", proc, "batchgate simulate")
    return proc, f"{base}/v1"


def sim_reset(sim_v1: str) -> None:
    http("POST", sim_v1.removesuffix("/v1") + "/_sim/reset", b"")


def sim_stats(sim_v1: str) -> dict[str, Any]:
    stats: dict[str, Any] = http("GET", sim_v1.removesuffix("/v1") + "/_sim/stats")
    return stats


def start_server(
    procs: Processes, *, data_dir: Path, upstream: str | Path, concurrency: int, core: int,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[Any], str]:  # fmt: skip
    """``batchgate serve`` (SQLite in ``data_dir``) pinned to ``core``; returns it and its
    ``…/v1`` base URL once ``/health`` answers. ``upstream``: a URL, or a config file (whose
    providers then carry their own concurrency)."""
    port = free_port()
    where = (
        ["--config", str(upstream)] if isinstance(upstream, Path)
        else ["--upstream", upstream, "--concurrency", str(concurrency)]
    )  # fmt: skip
    cmd = [
        BATCHGATE, "serve", "--port", str(port), "--data-dir", str(data_dir), *where,
        "--log-level", "warning", *extra,
    ]  # fmt: skip
    proc = procs.add(start_pinned(cmd, core, stdout=None))
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health", proc, "batchgate serve")
    return proc, f"{base}/v1"


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- measuring ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def core_busy_seconds(core: int) -> float:
    """CPU seconds core ``core`` has spent busy (anything but idle and iowait) since boot, from
    ``/proc/stat``: the busy time minus our own process's CPU is what others took from it."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
                return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return 0.0


def vm_hwm_mb(pid: int) -> float | None:
    """The kernel's peak-RSS record (VmHWM) of a live process, in MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread; the peak overall and per
    ``phase`` (a label the driver sets as it goes)."""

    pid: int
    interval: float = 0.1
    phase: str = "start"
    peak_mb: float = 0.0
    by_phase: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._proc = psutil.Process(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def mark(self, phase: str) -> None:
        """Close the current phase with a sample and open ``phase`` with another, so that
        even a phase shorter than the interval gets one."""
        if phase != self.phase:
            self.sample()
            self.phase = phase
            self.sample()

    def sample(self) -> None:
        try:
            rss = self._proc.memory_info().rss / 2**20
        except psutil.Error:
            return
        self.samples += 1
        self.peak_mb = max(self.peak_mb, rss)
        self.by_phase[self.phase] = max(self.by_phase.get(self.phase, 0.0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


@dataclass
class InFlightSampler:
    """Polls the simulator's ``in_flight`` every ``interval`` seconds in a thread. ``occupancy``
    is the mean in-flight count, as a share of ``concurrency``, over the samples taken while
    the work was under way (after the first request and before the ``n``-th): how full the
    client kept its pipe. Meaningless at 0 ms latency, where a reply is sent as soon as the
    request is read and ``in_flight`` is 0 or 1."""

    sim_v1: str
    n: int
    concurrency: int
    interval: float = 0.05
    values: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> InFlightSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, ValueError):
                stats = sim_stats(self.sim_v1)
                if 0 < stats["requests"] < self.n:
                    self.values.append(stats["in_flight"])

    def result(self) -> dict[str, float | int | None]:
        if not self.values:
            return {"occupancy": None, "starved_share": None, "samples": 0}
        mean = statistics.fmean(self.values)
        starved = sum(1 for v in self.values if v < self.concurrency / 2) / len(self.values)
        return {
            "occupancy": mean / self.concurrency,
            "starved_share": starved,  # samples with under half the slots in use
            "samples": len(self.values),
        }


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread (min, max, and max-min as a share of the median)."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {"median": med, "min": lo, "max": hi, "spread": (hi - lo) / med if med else 0.0}


# -- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    mem = psutil.virtual_memory().total / 2**30
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "libraries": versions,
        "load_avg_start": os.getloadavg(),
    }


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def fmt_range(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


# -- running a sweep and keeping its figures ----------------------------------------------------

RunCase = Callable[..., dict[str, Any]]  # (procs, args, input, sim, latency, c, work) -> case


def sweep(args: Any, run_case: RunCase) -> list[dict[str, Any]]:
    """Every (latency, concurrency) case of ``args`` on one ``args.n``-line input file, one
    simulator per latency (pinned to ``args.sim_core``); sets ``args.input_bytes``."""
    cases: list[dict[str, Any]] = []
    with Processes() as procs, temp_dir("batchgate-bench-input-") as work:
        input_path = work / "input.jsonl"
        args.input_bytes = write_input(input_path, args.n)
        for latency in args.latency_list:
            sim = start_simulator(procs, latency, args.sim_core)
            try:
                for c in args.concurrency_list:
                    cases.append(run_case(procs, args, input_path, sim, latency, c, work))
            finally:
                procs.stop(sim[0])
    return cases


def write_results(path: Path, result: dict[str, Any], table: str) -> None:
    """The JSON record to ``path``, then the Markdown tables and where the record went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print()
    print(table)
    load = result.get("machine", {}).get("load_avg_end")
    print(f"\nresults: {path}" + (f"  (load average at the end: {load})" if load else ""))
