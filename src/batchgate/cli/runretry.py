"""``batchgate run INPUT -o OUTPUT --retry-failed [CODES]``: send again the lines of an earlier
run that ended failed (all, or those with one of the comma-separated error codes), keep the
ones that succeeded, and rewrite OUTPUT (and --errors) in input order.

Without it a second run on the same state sends nothing (every line is done) and ``--fresh``
sends every line again, the succeeded ones too. The failed rows are queued again in the run's
own store (``Store.requeue_failed``) and the batch reopens; the same worker then sends them
and the batch finalizes as on a first run. ``CODES`` is optional: the option's value is taken
only when it looks like a list of codes, so ``--retry-failed INPUT`` still reads INPUT.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from typer.core import TyperCommand

from batchgate.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from batchgate.domain.records import Batch
    from batchgate.storage.sql import SqlStore as Store

FLAG = "--retry-failed"
WINDOW_S = 168 * 3600  # a reopened batch gets a whole run's window again
_CODES = re.compile(r"[a-z0-9_]+(,[a-z0-9_]+)*")

HELP = (
    "Send again the lines an earlier run left failed: all of them, or with CODES (comma-"
    "separated, e.g. upstream_error,request_timeout) only those with one of these error "
    "codes. The succeeded lines are kept; OUTPUT is rewritten in input order."
)


@dataclass(frozen=True)
class RetryFailed:
    """What ``--retry-failed`` asks for: ``codes`` None means every failed line."""

    codes: frozenset[str] | None = None

    @classmethod
    def parse(cls, value: str | None) -> RetryFailed | None:
        """The option's value: None (not given), "" (given bare: every code) or CODES."""
        if value is None:
            return None
        if not value:
            return cls()
        codes = [c.strip() for c in value.split(",") if c.strip()]
        bad = [c for c in codes if not _CODES.fullmatch(c)]
        if bad or not codes:
            raise ConfigError(
                f"--retry-failed {value!r}: expected error codes separated by commas, such as "
                "upstream_error,request_timeout (the summary of a run lists its codes)."
            )
        return cls(frozenset(codes))


def with_optional_value(args: list[str]) -> list[str]:
    """``args`` with a bare ``--retry-failed`` (last, or followed by anything that is not a
    list of codes: an option, INPUT) made explicit as ``--retry-failed=`` (every code); the
    parser then reads the option's value only where one was given."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--":
            break
        if arg == FLAG and (i + 1 == len(out) or not _CODES.fullmatch(out[i + 1])):
            out[i] = f"{FLAG}="
    return out


class RunCommand(TyperCommand):
    """The ``run`` command, whose ``--retry-failed`` takes an optional value."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, with_optional_value(args))


def retry_command(argv: tuple[str, ...]) -> str:
    """The command that retries this run's failed lines: the same one, less ``--fresh`` and
    any ``--retry-failed`` given, plus a bare ``--retry-failed``."""
    kept: list[str] = []
    for arg in with_optional_value(list(argv)):
        if arg == "--fresh" or arg.startswith(f"{FLAG}="):
            continue
        if kept and kept[-1] == FLAG:  # ``--retry-failed CODES``: drop both
            kept.pop()
            continue
        kept.append(arg)
    if kept and kept[-1] == FLAG:
        kept.pop()
    return shlex.join(["batchgate", *kept, FLAG])


def requeue(store: Store, batch: Batch, retry: RetryFailed, console: Console) -> Batch:
    """Queue the batch's failed lines again as ``retry`` asks (saying how many, or why none);
    the batch as it is now. An expired or cancelled batch cannot run again: refused."""
    status = str(batch.status)
    if status in ("validating", "finalizing"):
        _say(console, f"nothing to retry yet: the batch is {status}; it runs to its end first.")
        return batch
    if status in ("expired", "cancelled", "failed"):
        raise ConfigError(
            f"--retry-failed: this run's batch ended {status}; its lines cannot be sent again. "
            "Pass --fresh to start over."
        )
    failed = store.failed_codes(batch.id)
    now = int(time.time())
    n = store.requeue_failed(batch.id, now=now, codes=retry.codes, expires_at=now + WINDOW_S)
    _say(console, _retrying(n, failed, retry.codes))
    return store.get_batch(batch.id) or batch


def _retrying(n: int, failed: dict[str, int], codes: frozenset[str] | None) -> str:
    if not failed:
        return "nothing to retry: no line failed (that could be sent again)."
    if not n:
        wanted = ", ".join(sorted(codes or ()))
        return f"nothing to retry: no failed line has {wanted} (they have {_listed(failed)})."
    chosen = {c: k for c, k in failed.items() if codes is None or c in codes}
    kept = sum(failed.values()) - n
    other = f"; {kept} failed with other codes stay failed" if kept else ""
    return f"retrying {n} failed line{'s' if n != 1 else ''} ({_listed(chosen)}){other}"


def _listed(codes: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(codes.items(), key=lambda x: -x[1]))


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)
