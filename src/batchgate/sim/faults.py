"""Deterministic fault selection: which injected fault (if any) a request gets, from the seed,
the request body's bytes and how many times that body has been seen."""

from __future__ import annotations

import enum
from hashlib import blake2b

from batchgate.sim.config import SimConfig

# Past this many distinct bodies the attempt memory is cleared (bounding it to tens of MB);
# attempt numbers then start again from 0, so determinism holds for runs below the bound.
MAX_TRACKED_BODIES = 500_000
_TWO_64 = float(2**64)


class Fault(enum.Enum):
    """An injected fault, in draw order."""

    DROP = "drop"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    OVERLOADED = "529"
    SLOW = "slow"
    MALFORMED = "malformed"


_ORDER = tuple(Fault)
# Which 64-bit draw each fault (in draw order) compares against. The six faults that predate
# 529 keep the draws they always had (slots 0-5 of the main digest), so a seed gives the same
# outcomes as before; 529 takes slot 6, from a second digest made only when rate_529 > 0.
_SLOTS = (0, 1, 2, 3, 6, 4, 5)
_OVERLOADED_PERSON = b"batchgate-sim529"


class FaultPicker:
    """Chooses faults so that a test's outcome does not depend on arrival order or timing.

    The n-th time (n = 0, 1, ...) a given body is seen, one 64-bit draw per fault is taken
    from ``blake2b(body digest, n, seed)``; a fault fires when its draw < its rate * 2**64,
    and the first one that fires (drop, 429, 500, 503, 529, slow, malformed) wins. So with
    the same seed the same body meets the same fault on the same attempt, a retry of it draws
    afresh (a rate below 1 lets a retry succeed), and rate 1.0 always fires. Identical bodies
    share one attempt counter. The draws do not depend on the endpoint, so the same body sent
    to ``/v1/messages`` or a chat endpoint meets the same fault. Not thread-safe: used on the
    server's event loop only.
    """

    __slots__ = ("_attempts",)

    def __init__(self) -> None:
        self._attempts: dict[bytes, int] = {}

    def reset(self) -> None:
        """Forget every body's attempt count."""
        self._attempts.clear()

    def pick(self, config: SimConfig, body: bytes) -> Fault | None:
        """The fault for this request, or None; records one attempt for ``body``."""
        rates = config.fault_rates
        if not any(rates):
            return None
        key = blake2b(body, digest_size=16).digest()
        attempts = self._attempts
        attempt = attempts.get(key, 0)
        if attempt == 0 and len(attempts) >= MAX_TRACKED_BODIES:
            attempts.clear()
        attempts[key] = attempt + 1
        salt = attempt.to_bytes(8, "little") + (config.seed & (2**64 - 1)).to_bytes(8, "little")
        draws = blake2b(key, digest_size=48, salt=salt).digest()
        if config.rate_529 > 0.0:
            draws += blake2b(key, digest_size=8, salt=salt, person=_OVERLOADED_PERSON).digest()
        for fault, slot, rate in zip(_ORDER, _SLOTS, rates, strict=True):
            if rate > 0.0:
                draw = int.from_bytes(draws[slot * 8 : slot * 8 + 8], "little")
                if draw < rate * _TWO_64:
                    return fault
        return None
