"""The simulator's knobs: ``SimConfig`` (latency, fault rates, overload, RPM limit, models)
and its validation, shared by the constructor, ``POST /_sim/config`` and
``SimHandle.configure``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Fault rates in the fixed order faults are drawn in (see faults.py).
RATE_FIELDS = (
    "rate_drop",
    "rate_429",
    "rate_500",
    "rate_503",
    "rate_529",
    "rate_slow",
    "rate_malformed",
)
_NON_NEGATIVE = ("latency_ms", "jitter_ms", "retry_after_s", "slow_ms")


@dataclass
class SimConfig:
    """How the simulated upstream behaves. Every field has a default, so ``SimConfig()`` is a
    fast, fault-free server.

    Latency: each model reply (200, injected 500, malformed) waits ``latency_ms`` ± a uniform
    ``jitter_ms`` (never below 0); rejections (400, 404, 429, 503, 529, overload) answer at once.
    Faults: each ``rate_*`` is the probability, drawn independently per request in the order
    drop, 429, 500, 503, 529, slow, malformed; the first fault drawn wins (see faults.py for
    how draws are made deterministic). They apply to every model endpoint, OpenAI's and
    Anthropic's ``/v1/messages`` alike, each answering in its own API's error envelope
    (``rate_limit_error``, ``api_error``, ...). The 529 fault (``overloaded_error``, with
    Retry-After) is Anthropic's: OpenAI-compatible servers never send 529, so on the OpenAI
    endpoints a drawn 529 is answered exactly like the 503 fault (stats still count it under
    ``faults["529"]``). ``overload_max_in_flight`` > 0 rejects a request that arrives while
    that many are in flight: 429 on the OpenAI endpoints, 529 ``overloaded_error`` on
    ``/v1/messages``. A request whose model starts with ``fail_model_prefix`` (when
    non-empty) gets a non-retryable 400 ``model_not_found`` (on ``/v1/messages``, Anthropic's
    answer to an unknown model: 404 ``not_found_error``).

    RPM limit: ``rpm_limit`` > 0 gives each API key (the ``Authorization`` header; on
    ``/v1/messages`` ``x-api-key``, else ``Authorization``; no key = one shared anonymous key)
    a token bucket of ``rpm_burst`` requests (0 = a minute's worth, ``rpm_limit``), refilled
    at ``rpm_limit / 60`` per second (see ratelimit.py). It is checked first, before overload
    and the faults, as a real upstream's front door is: a request with no token left is
    answered 429 at once (OpenAI: type ``requests``, code ``rate_limit_exceeded``; Anthropic:
    ``rate_limit_error``) with ``retry-after`` / ``retry-after-ms`` = the time until one token
    is back, holds no in-flight slot, draws no fault and is counted in ``rate_limited``. With
    the limit on, every answer of a model endpoint carries the budget headers:
    ``x-ratelimit-{limit,remaining,reset}-requests`` on OpenAI's endpoints,
    ``anthropic-ratelimit-requests-{limit,remaining,reset}`` on ``/v1/messages``. Changing
    ``rpm_limit`` or ``rpm_burst`` live (or a stats reset) refills every bucket.

    Raises ValueError on a rate outside [0, 1], a negative duration, a negative
    ``rpm_limit``, an ``rpm_burst`` that is neither 0 nor at least 1, or a wrong type.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_529: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    slow_ms: float = 30_000.0
    rate_malformed: float = 0.0
    overload_max_in_flight: int = 0
    rpm_limit: int = 0
    rpm_burst: float = 0.0
    seed: int = 0
    models: list[str] = field(default_factory=lambda: ["sim-model", "sim-embed"])
    fail_model_prefix: str = "fail-"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
        for name in RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.overload_max_in_flight < 0:
            raise ValueError("overload_max_in_flight must not be negative")
        if self.rpm_limit < 0:
            raise ValueError("rpm_limit must not be negative")
        if self.rpm_burst != 0 and self.rpm_burst < 1:
            raise ValueError("rpm_burst must be 0 (a minute's worth) or at least 1")

    @property
    def fault_rates(self) -> tuple[float, ...]:
        """The fault rates in draw order: drop, 429, 500, 503, 529, slow, malformed."""
        return tuple(getattr(self, name) for name in RATE_FIELDS)

    def with_changes(self, changes: Mapping[str, Any]) -> SimConfig:
        """A new config with ``changes`` applied; raises ValueError on an unknown field or a
        bad value (the current config is left as it was)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown simulator setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _coerce(name: str, kind: object, value: Any) -> Any:
    """``value`` checked against the field's declared type (a string, as annotations are
    postponed), with ints accepted where floats are expected."""
    bad = ValueError(f"{name}: invalid value {value!r}")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if not math.isfinite(value):
            raise bad
        return float(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad
        return value
    # list[str]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise bad
    return list(value)
