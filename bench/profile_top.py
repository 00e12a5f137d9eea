"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks): where the samples go.

Prints the share of samples by area (database, upstream HTTP client, API server, batchgate's
own code…), the top functions by inclusive samples (on the stack) and by self samples (the
leaf), as Markdown. ``bench/run.py --profile DIR`` writes such files.

    .venv/bin/python bench/profile_top.py PROFILE.txt [--top 15]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# (area, substrings of a frame's file); the first match from the leaf up names a sample's area
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQLite / SQLAlchemy", ("sqlalchemy/", "sqlite3/", "batchgate/storage/")),
    ("upstream client (aiohttp)", ("aiohttp/", "yarl/", "multidict/")),
    ("API server (uvicorn/starlette)", ("uvicorn/", "starlette/", "h11/", "httptools/")),
    ("JSON (orjson/json)", ("orjson", "json/")),
    ("asyncio / threads", ("asyncio/", "concurrent/", "threading.py", "selectors.py")),
)

# Entry frames every sample of a thread carries (the CLI, uvicorn's runner, thread bootstrap):
# left out of the inclusive list, where they would only fill the top.
WRAPPERS = (
    "typer/", "click/", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py",
    "asyncio/runners.py", "threading.py", "concurrent/futures/thread.py", "batchgate/cli/",
    "batchgate/__main__.py", "<frozen runpy>",
)  # fmt: skip


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            m = FRAME.match(raw)
            frames.append((m["func"], m["file"]) if m else (raw, ""))
        stacks.append((frames, int(count)))
    return stacks


def _wrapper(func: str, file: str) -> bool:
    return func == "<module>" or any(w in file for w in WRAPPERS)


def area(frames: list[tuple[str, str]]) -> str:
    for _, file in reversed(frames):
        for name, needles in AREAS:
            if any(n in file for n in needles):
                return name
        if file.startswith("batchgate/"):
            return "batchgate (engine, API, domain)"
    return "other"


def summarise(path: Path, top: int) -> str:
    stacks = parse(path)
    total = sum(c for _, c in stacks) or 1
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    threads = 0
    for frames, count in stacks:
        areas[area(frames)] += count
        if any(f == "Thread._bootstrap" for f, _ in frames):
            threads += count
        for key in {f"{f} ({file})" for f, file in frames if not _wrapper(f, file)}:
            inclusive[key] += count
        for key in {f for f, file in frames if file.startswith("batchgate/")}:
            if not _wrapper(key, "batchgate/cli/" if key in ("main", "serve") else key):
                ours[key] += count
        if frames:
            leaf[f"{frames[-1][0]} ({frames[-1][1]})"] += count
    out = [
        f"**{path.name}**: {total:,} samples; {threads / total:.0%} on the store's worker "
        "threads (database calls), the rest on the event loop.",
        "",
        "| area (the innermost known frame) | share |",
        "|---|---:|",
    ]
    out += [f"| {name} | {c / total:.1%} |" for name, c in areas.most_common()]
    out += ["", "| batchgate function (inclusive: it and what it calls) | share |", "|---|---:|"]
    out += [f"| `{k}` | {c / total:.1%} |" for k, c in ours.most_common(top)]
    out += ["", "| top inclusive (on the stack) | share |", "|---|---:|"]
    out += [f"| `{k}` | {c / total:.1%} |" for k, c in inclusive.most_common(top)]
    out += ["", "| top self (leaf) | share |", "|---|---:|"]
    out += [f"| `{k}` | {c / total:.1%} |" for k, c in leaf.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()
