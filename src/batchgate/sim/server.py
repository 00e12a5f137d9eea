"""The simulator's request handling: routing, the RPM limit, overload, fault injection, latency
and stats, on
top of the reply builders, for the OpenAI endpoints and Anthropic's ``/v1/messages`` (each
answering errors in its own API's envelope, see dialects.py). Transport-free:
``protocol.py`` feeds it parsed requests."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from batchgate.sim import envelopes
from batchgate.sim.config import SimConfig
from batchgate.sim.dialects import Dialect, anthropic_dialect, openai_dialect
from batchgate.sim.embeddings import embeddings
from batchgate.sim.envelopes import InvalidRequest
from batchgate.sim.faults import Fault, FaultPicker
from batchgate.sim.messages import message
from batchgate.sim.ratelimit import RateLimiter, retry_headers
from batchgate.sim.replies import chat_completion, completion, model_object, models_list, response
from batchgate.sim.stats import SimStats

Builder = Callable[[dict[str, Any], SimConfig], dict[str, Any]]

MODEL_ENDPOINTS: dict[str, Builder] = {
    "/v1/chat/completions": chat_completion,
    "/v1/completions": completion,
    "/v1/embeddings": embeddings,
    "/v1/responses": response,
}
# Anthropic's endpoints: errors in Anthropic's envelope, 529 for overload, a request-id header.
ANTHROPIC_ENDPOINTS: dict[str, Builder] = {"/v1/messages": message}


class Reply(NamedTuple):
    """What to send: ``headers`` are extra header lines (each ending in CRLF); ``delay`` is in
    seconds; ``slot`` means the reply holds an in-flight slot, so whoever sends (or abandons)
    it must call ``SimApp.finish`` exactly once; ``anthropic`` adds Anthropic's ``request-id``
    header (the same id as ``x-request-id``)."""

    status: int
    body: bytes
    headers: bytes = b""
    delay: float = 0.0
    slot: bool = False
    anthropic: bool = False


class SimApp:
    """The simulated upstream, minus the sockets. Not thread-safe: call it from the event
    loop that serves it (``SimHandle`` marshals calls from other threads). ``clock``
    (monotonic seconds) and ``wall`` (epoch seconds) drive the RPM limit's buckets; tests
    inject them to step time without sleeping."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.stats = SimStats()
        self._clock = clock
        self._wall = wall
        self._limiter: RateLimiter | None = None
        self._faults = FaultPicker()
        self._rng = random.Random(0)
        self._control: dict[tuple[bytes, str], Callable[[bytes], Reply]] = {
            (b"GET", "/v1/models"): lambda _: Reply(200, self._models_body),
            (b"GET", "/health"): lambda _: Reply(200, b'{"status":"ok"}'),
            (b"GET", "/_sim/stats"): lambda _: Reply(200, orjson.dumps(self.stats.snapshot())),
            (b"POST", "/_sim/reset"): self._reset_route,
            (b"GET", "/_sim/config"): lambda _: Reply(200, orjson.dumps(self.config.to_dict())),
            (b"POST", "/_sim/config"): self._config_route,
        }
        self.set_config(config if config is not None else SimConfig())

    @property
    def config(self) -> SimConfig:
        """The config in force (replace it with ``set_config`` / ``configure``)."""
        return self._config

    def set_config(self, config: SimConfig) -> None:
        """Put ``config`` in force for every request from now on."""
        self._config = config
        self._has_faults = any(config.fault_rates)
        self._has_latency = config.latency_ms > 0 or config.jitter_ms > 0
        self._rng.seed(config.seed)
        seconds = config.retry_after_s
        retry = f"{seconds:g}" if seconds != int(seconds) else str(int(seconds))
        self._retry_headers = (
            f"retry-after: {retry}\r\nretry-after-ms: {round(seconds * 1000)}\r\n".encode()
        )
        self._openai = openai_dialect(config.overload_max_in_flight, seconds)
        self._anthropic = anthropic_dialect(config.overload_max_in_flight, seconds)
        self._models_body = orjson.dumps(models_list(config))
        self._set_limiter(config)

    def _set_limiter(self, config: SimConfig) -> None:
        """Keep the buckets across unrelated changes; a new limit or burst starts afresh."""
        if not config.rpm_limit:
            self._limiter = None
            return
        limiter = self._limiter
        if limiter is None or (limiter.limit, limiter.burst) != (
            config.rpm_limit,
            config.rpm_burst,
        ):
            self._limiter = RateLimiter(
                config.rpm_limit, config.rpm_burst, clock=self._clock, wall=self._wall
            )

    def configure(self, changes: Mapping[str, Any]) -> SimConfig:
        """Apply field changes live; raises ValueError (config unchanged) on a bad change."""
        config = self._config.with_changes(changes)
        self.set_config(config)
        return config

    def reset(self) -> None:
        """Zero the stats, forget fault attempt counts (so fault draws start afresh) and
        refill every RPM bucket."""
        self.stats.reset()
        self._faults.reset()
        if self._limiter is not None:
            self._limiter.clear()

    def handle(
        self,
        method: bytes,
        path: str,
        body: bytes,
        authorization: bytes = b"",
        api_key: bytes = b"",
    ) -> Reply | None:
        """The reply to one request, or None to close the connection without replying.
        ``authorization`` and ``api_key`` are the ``Authorization`` and ``x-api-key``
        header values (empty when absent): the key the RPM limit counts against."""
        if method == b"POST":
            limiter = self._limiter
            builder = MODEL_ENDPOINTS.get(path)
            if builder is not None:
                if limiter is not None:
                    return self._limited(limiter, path, builder, body, self._openai, authorization)
                return self._model_request(path, builder, body, self._openai)
            builder = ANTHROPIC_ENDPOINTS.get(path)
            if builder is not None:
                if limiter is not None:
                    key = api_key or authorization
                    return self._limited(limiter, path, builder, body, self._anthropic, key)
                return self._model_request(path, builder, body, self._anthropic)
        route = self._control.get((method, path))
        if route is not None:
            return route(body)
        if method == b"GET" and path.startswith("/v1/models/"):
            return self._model_route(path[len("/v1/models/") :])
        return Reply(404, envelopes.not_found_body(method.decode("latin-1"), path))

    def finish(self, reply: Reply, sent: bool) -> None:
        """Release the in-flight slot of a ``slot`` reply once it was sent (or abandoned)."""
        stats = self.stats
        stats.in_flight -= 1
        if sent:
            stats.by_status[reply.status] = stats.by_status.get(reply.status, 0) + 1
        else:
            stats.cancelled += 1

    def _model_request(
        self, path: str, builder: Builder, body: bytes, dialect: Dialect
    ) -> Reply | None:
        config = self._config
        stats = self.stats
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        limit = config.overload_max_in_flight
        if limit and stats.in_flight >= limit:
            status, overloaded = dialect.overload
            stats.by_status[status] = stats.by_status.get(status, 0) + 1
            return Reply(status, overloaded, self._retry_headers, anthropic=dialect.anthropic)
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        fault = self._faults.pick(config, body) if self._has_faults else None
        if fault is None:
            return self._model_reply(builder, body, config, self._latency(config), dialect)
        stats.faults[fault.value] = stats.faults.get(fault.value, 0) + 1
        return self._fault_reply(fault, builder, body, config, dialect)

    def _limited(
        self,
        limiter: RateLimiter,
        path: str,
        builder: Builder,
        body: bytes,
        dialect: Dialect,
        key: bytes,
    ) -> Reply | None:
        """A model request under the RPM limit: checked before anything else (overload,
        faults), and every answer gets the budget headers."""
        decision = limiter.take(key)
        budget = dialect.rate_headers(limiter.limit, decision)
        if decision.allowed:
            reply = self._model_request(path, builder, body, dialect)
            return None if reply is None else reply._replace(headers=reply.headers + budget)
        stats = self.stats
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        stats.by_status[429] = stats.by_status.get(429, 0) + 1
        stats.rate_limited += 1
        rejected = dialect.rpm_limited(limiter.limit, decision.retry_after)
        headers = retry_headers(decision.retry_after) + budget
        return Reply(429, rejected, headers, anthropic=dialect.anthropic)

    def _model_reply(
        self, builder: Builder, body: bytes, config: SimConfig, delay: float, dialect: Dialect
    ) -> Reply:
        anthropic = dialect.anthropic
        try:
            request = orjson.loads(body)
            if not isinstance(request, dict):
                return Reply(400, dialect.invalid_json, slot=True, anthropic=anthropic)
            return Reply(200, orjson.dumps(builder(request, config)), b"", delay, True, anthropic)
        except orjson.JSONDecodeError:
            return Reply(400, dialect.invalid_json, slot=True, anthropic=anthropic)
        except InvalidRequest as exc:
            return Reply(exc.status, dialect.invalid(exc), slot=True, anthropic=anthropic)
        except Exception as exc:  # a simulator bug: report it, keep the slot accounting right
            return Reply(500, dialect.internal(exc), slot=True, anthropic=anthropic)

    def _fault_reply(
        self, fault: Fault, builder: Builder, body: bytes, config: SimConfig, dialect: Dialect
    ) -> Reply | None:
        if fault is Fault.DROP:
            self.stats.in_flight -= 1
            self.stats.dropped += 1
            return None
        retry = self._retry_headers
        anthropic = dialect.anthropic
        if fault is Fault.RATE_LIMIT:
            return Reply(429, dialect.rate_limited, retry, slot=True, anthropic=anthropic)
        if fault is Fault.UNAVAILABLE:
            return Reply(503, dialect.unavailable, retry, slot=True, anthropic=anthropic)
        if fault is Fault.OVERLOADED:  # 529 on /v1/messages, the 503 fault's reply on OpenAI's
            status, overloaded = dialect.fault_529
            return Reply(status, overloaded, retry, slot=True, anthropic=anthropic)
        if fault is Fault.SERVER_ERROR:
            delay = self._latency(config)
            return Reply(500, dialect.server_error, delay=delay, slot=True, anthropic=anthropic)
        if fault is Fault.SLOW:
            return self._model_reply(builder, body, config, config.slow_ms / 1000, dialect)
        # MALFORMED: the real reply cut in half, which can never parse (the top-level
        # object's closing brace is its last byte).
        reply = self._model_reply(builder, body, config, self._latency(config), dialect)
        if reply.status != 200:
            return reply
        return reply._replace(body=reply.body[: len(reply.body) // 2])

    def _latency(self, config: SimConfig) -> float:
        if not self._has_latency:
            return 0.0
        jitter = config.jitter_ms
        millis = config.latency_ms + (self._rng.uniform(-jitter, jitter) if jitter else 0.0)
        return max(0.0, millis) / 1000

    def _model_route(self, name: str) -> Reply:
        if name in self._config.models:
            return Reply(200, orjson.dumps(model_object(name)))
        return Reply(
            404,
            envelopes.error_body(
                f"The model `{name}` does not exist (simulated).", code="model_not_found"
            ),
        )

    def _reset_route(self, _: bytes) -> Reply:
        self.reset()
        return Reply(200, orjson.dumps(self.stats.snapshot()))

    def _config_route(self, body: bytes) -> Reply:
        try:
            changes = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            return Reply(400, envelopes.INVALID_JSON)
        if not isinstance(changes, dict):
            return Reply(400, envelopes.INVALID_JSON)
        try:
            config = self.configure(changes)
        except (TypeError, ValueError) as exc:
            return Reply(400, envelopes.error_body(str(exc), param="config"))
        return Reply(200, orjson.dumps(config.to_dict()))
