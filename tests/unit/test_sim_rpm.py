"""The simulator's per-key RPM limit: the token bucket on an injected clock, the 429 answers
and the rate headers of both API families (SimApp directly, stepping time without sleeping),
live reconfiguration, and the same over real HTTP and through the CLI."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from batchgate.cli.main import app as cli_app
from batchgate.sim import Reply, SimApp, SimConfig, SimHandle
from batchgate.sim.ratelimit import RateLimiter, format_duration, format_rfc3339
from tests.helpers.procs import Procs

CHAT = json.dumps({"model": "sim-model", "messages": [{"role": "user", "content": "Hi"}]})
MESSAGE = json.dumps(
    {"model": "sim-model", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
)
WALL = 1_735_787_045.0  # 2025-01-02T03:04:05Z


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def headers(reply: Reply) -> dict[str, str]:
    lines = reply.headers.decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines if line)


def make_app(clock: Clock, **config: Any) -> SimApp:
    return SimApp(SimConfig(**config), clock=clock, wall=lambda: WALL + clock.now - 1000.0)


def chat(app: SimApp, key: bytes = b"Bearer a", body: str = CHAT) -> Reply:
    reply = app.handle(b"POST", "/v1/chat/completions", body.encode(), key)
    assert reply is not None
    return reply


def message(app: SimApp, api_key: bytes = b"k1") -> Reply:
    reply = app.handle(b"POST", "/v1/messages", MESSAGE.encode(), b"", api_key)
    assert reply is not None
    return reply


# formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.0001, "1ms"),
        (0.12, "120ms"),
        (0.9999, "1s"),
        (1, "1s"),
        (59.5, "59.5s"),
        (61.25, "1m1.25s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
        (7200, "2h0m0s"),
    ],
)
def test_format_duration_is_openais(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_rfc3339_rounds_up_to_the_second() -> None:
    assert format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339(WALL) == "2025-01-02T03:04:05Z"
    assert format_rfc3339(WALL + 0.2) == "2025-01-02T03:04:06Z"


# the bucket


def test_bucket_holds_a_minute_and_refills_per_second() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # 1 token a second, 60 at most
    taken = [limiter.take(b"k") for _ in range(60)]
    assert all(d.allowed for d in taken)
    assert [d.remaining for d in taken] == list(range(59, -1, -1))
    assert taken[0].reset == pytest.approx(1.0) and taken[-1].reset == pytest.approx(60.0)
    over = limiter.take(b"k")
    assert (over.allowed, over.remaining) == (False, 0)
    assert over.retry_after == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.take(b"k").retry_after == pytest.approx(0.5)
    clock.now += 0.5
    back = limiter.take(b"k")
    assert back.allowed and back.remaining == 0 and back.retry_after == 0.0


def test_burst_caps_the_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(1200, 20, clock=clock)  # 20 a second, 20 at most
    assert sum(limiter.take(b"k").allowed for _ in range(25)) == 20
    rejected = limiter.take(b"k")
    assert rejected.retry_after == pytest.approx(0.05)
    assert rejected.reset == pytest.approx(1.0)
    clock.now += 60  # an idle minute refills to the burst, not to 1200
    assert sum(limiter.take(b"k").allowed for _ in range(25)) == 20


def test_keys_have_their_own_buckets_and_are_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(60, 1, clock=clock, max_keys=3)
    for key in (b"a", b"b", b"c"):
        assert limiter.take(key).allowed
    assert not limiter.take(b"a").allowed  # a is now the most recently used
    assert limiter.take(b"d").allowed  # evicts b, the least recently used
    assert len(limiter) == 3
    assert not limiter.take(b"a").allowed and not limiter.take(b"c").allowed
    assert limiter.take(b"b").allowed  # forgotten: a fresh, full bucket
    limiter.clear()
    assert len(limiter) == 0 and limiter.take(b"a").allowed


# SimApp: answers and headers


def test_over_the_limit_is_openai_429_with_retry_after() -> None:
    clock = Clock()
    app = make_app(clock, rpm_limit=2)  # one token back every 30 s
    assert [chat(app).status for _ in range(2)] == [200, 200]
    clock.now += 10
    rejected = chat(app)
    assert rejected.status == 429 and not rejected.slot and rejected.delay == 0
    error = json.loads(rejected.body)["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert "Rate limit reached for requests" in error["message"]
    assert "Limit 2, Used 2, Requested 1" in error["message"]
    assert "try again in 20s" in error["message"]
    assert headers(rejected) == {
        "retry-after": "20",
        "retry-after-ms": "20000",
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50s",
    }


def test_every_openai_answer_carries_the_budget_headers() -> None:
    clock = Clock()
    app = make_app(clock, rpm_limit=600, rpm_burst=5)
    ok = chat(app)
    assert ok.status == 200 and ok.slot
    assert headers(ok) == {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "100ms",
    }
    app.finish(ok, sent=True)
    bad = chat(app, body="not json")
    assert bad.status == 400
    assert headers(bad)["x-ratelimit-remaining-requests"] == "3"
    app.finish(bad, sent=True)
    app.configure({"rate_500": 1.0})  # a fault's answer has them too; buckets kept
    fault = chat(app)
    assert fault.status == 500
    assert headers(fault)["x-ratelimit-remaining-requests"] == "2"
    assert headers(fault)["x-ratelimit-reset-requests"] == "300ms"


def test_embeddings_and_responses_are_limited_too() -> None:
    app = make_app(Clock(), rpm_limit=60, rpm_burst=1)
    embed = app.handle(b"POST", "/v1/embeddings", b'{"model":"e","input":"x"}', b"k")
    assert embed is not None and embed.status == 200
    again = app.handle(b"POST", "/v1/responses", b'{"model":"m","input":"x"}', b"k")
    assert again is not None and again.status == 429
    models = app.handle(b"GET", "/v1/models", b"", b"k")
    assert models is not None and models.status == 200 and models.headers == b""  # not limited


def test_anthropic_answers_carry_anthropics_headers() -> None:
    clock = Clock()
    app = make_app(clock, rpm_limit=60, rpm_burst=2)
    ok = message(app)
    assert ok.status == 200 and ok.anthropic
    assert headers(ok) == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "1",
        "anthropic-ratelimit-requests-reset": "2025-01-02T03:04:06Z",  # full in 1 s
    }
    assert message(app).status == 200
    clock.now += 0.25
    rejected = message(app)
    assert rejected.status == 429 and rejected.anthropic
    body = json.loads(rejected.body)
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "60 requests per minute" in body["error"]["message"]
    assert headers(rejected) == {
        "retry-after": "1",
        "retry-after-ms": "750",
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "0",
        # 1.75 s until full, from 03:04:05.25: 03:04:07
        "anthropic-ratelimit-requests-reset": "2025-01-02T03:04:07Z",
    }


def test_the_key_is_authorization_or_x_api_key_and_none_is_shared() -> None:
    app = make_app(Clock(), rpm_limit=60, rpm_burst=1)
    assert chat(app, b"Bearer a").status == 200
    assert chat(app, b"Bearer a").status == 429
    assert chat(app, b"Bearer b").status == 200
    assert message(app, b"k1").status == 200
    assert message(app, b"k1").status == 429
    assert message(app, b"k2").status == 200
    assert chat(app, b"").status == 200  # the anonymous key
    assert chat(app, b"").status == 429
    # /v1/messages without x-api-key counts against Authorization
    reply = app.handle(b"POST", "/v1/messages", MESSAGE.encode(), b"Bearer c", b"")
    assert reply is not None and reply.status == 200
    assert chat(app, b"Bearer c").status == 429


def test_rpm_comes_before_overload_and_faults() -> None:
    app = make_app(Clock(), rpm_limit=60, rpm_burst=1, rate_503=1.0)
    assert chat(app).status == 503
    rejected = chat(app)
    assert rejected.status == 429
    assert json.loads(rejected.body)["error"]["code"] == "rate_limit_exceeded"
    stats = app.stats.snapshot()
    assert stats["requests"] == 2 and stats["rate_limited"] == 1
    assert stats["faults"] == {"503": 1}  # the rejected request drew no fault
    assert stats["in_flight"] == 1 and stats["max_in_flight"] == 1  # nor took a slot
    assert stats["by_status"] == {"429": 1}  # the 503 is counted once sent


def test_overload_answer_carries_the_budget_headers() -> None:
    app = make_app(Clock(), rpm_limit=60, overload_max_in_flight=1)
    held = chat(app)
    assert held.status == 200
    overloaded = chat(app)
    assert overloaded.status == 429
    assert json.loads(overloaded.body)["error"]["code"] == "overloaded"
    assert headers(overloaded)["x-ratelimit-remaining-requests"] == "58"
    assert app.stats.rate_limited == 0


def test_stats_count_rejections_and_reset_refills() -> None:
    app = make_app(Clock(), rpm_limit=60, rpm_burst=1)
    app.finish(chat(app), sent=True)
    chat(app)
    chat(app)
    stats = app.stats.snapshot()
    assert stats["rate_limited"] == 2
    assert stats["by_status"] == {"200": 1, "429": 2}
    assert stats["by_path"] == {"/v1/chat/completions": 3}
    app.reset()
    assert app.stats.snapshot()["rate_limited"] == 0
    assert chat(app).status == 200


def test_off_means_no_headers() -> None:
    app = make_app(Clock())
    for _ in range(5):
        reply = chat(app)
        assert reply.status == 200 and reply.headers == b""
    assert message(app).headers == b""


# live configuration


def test_live_changes_reset_buckets_only_when_the_limit_changes() -> None:
    app = make_app(Clock(), rpm_limit=60, rpm_burst=1)
    assert chat(app).status == 200
    app.configure({"latency_ms": 5})
    assert chat(app).status == 429  # same limit: the bucket is kept
    app.configure({"rpm_burst": 2})
    assert [chat(app).status for _ in range(3)] == [200, 200, 429]
    app.configure({"rpm_limit": 120})
    assert chat(app).status == 200
    assert headers(chat(app))["x-ratelimit-limit-requests"] == "120"
    app.configure({"rpm_limit": 0})
    assert [chat(app).headers for _ in range(3)] == [b"", b"", b""]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rpm_limit": -1}, "rpm_limit must not be negative"),
        ({"rpm_burst": 0.5}, "rpm_burst must be 0"),
        ({"rpm_limit": 1.5}, "rpm_limit: invalid value"),
    ],
)
def test_bad_rpm_settings_are_rejected(changes: dict[str, Any], message: str) -> None:
    app = make_app(Clock(), rpm_limit=60)
    with pytest.raises(ValueError, match=message):
        app.configure(changes)
    assert app.config.rpm_limit == 60


# over real HTTP


def test_limit_over_http_per_key(sim: SimHandle) -> None:
    sim.configure(rpm_limit=6, rpm_burst=2)  # a token back every 10 s: no refill mid-test
    body = json.loads(CHAT)
    with httpx.Client(base_url=sim.base_url, timeout=5.0) as client:
        alice = {"Authorization": "Bearer alice"}
        first = client.post("/v1/chat/completions", json=body, headers=alice)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-requests"] == "6"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"].endswith("s")
        assert client.post("/v1/chat/completions", json=body, headers=alice).status_code == 200
        rejected = client.post("/v1/chat/completions", json=body, headers=alice)
        assert rejected.status_code == 429
        assert rejected.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(rejected.headers["retry-after"]) <= 10
        assert 0 < int(rejected.headers["retry-after-ms"]) <= 10_000
        bob = client.post("/v1/chat/completions", json=body, headers={"Authorization": "b"})
        assert bob.status_code == 200
        anthropic = client.post(
            "/v1/messages", content=MESSAGE, headers={"x-api-key": "alice"}
        )  # another header, another key
        assert anthropic.status_code == 200
        assert anthropic.headers["anthropic-ratelimit-requests-remaining"] == "1"
        assert anthropic.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        config = client.post("/_sim/config", json={"rpm_limit": 60}).json()
        assert config["rpm_limit"] == 60 and config["rpm_burst"] == 2
        again = client.post("/v1/chat/completions", json=body, headers=alice)
        assert again.status_code == 200  # a new limit: buckets refilled
        stats = client.get("/_sim/stats").json()
        assert stats["rate_limited"] == 1 and stats["by_status"]["429"] == 1
        bad = client.post("/_sim/config", json={"rpm_burst": 0.5})
        assert bad.status_code == 400 and "rpm_burst" in bad.json()["error"]["message"]


def test_cli_flags(procs: Procs) -> None:
    _, url = procs.simulator("--rpm-limit", "6", "--rpm-burst", "1")
    config = httpx.get(url.removesuffix("/v1") + "/_sim/config").json()
    assert (config["rpm_limit"], config["rpm_burst"]) == (6, 1.0)
    body = json.loads(CHAT)
    assert httpx.post(url + "/chat/completions", json=body).status_code == 200
    assert httpx.post(url + "/chat/completions", json=body).status_code == 429


def test_cli_rejects_a_bad_burst() -> None:
    result = CliRunner().invoke(cli_app, ["simulate", "--rpm-limit", "6", "--rpm-burst", "0.5"])
    assert result.exit_code == 2
    assert "rpm_burst must be 0" in result.output
