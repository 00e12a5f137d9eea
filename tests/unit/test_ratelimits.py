"""The rate budgets upstreams announce in their headers (batchgate.providers.ratelimits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchgate.config import UpstreamConfig
from batchgate.providers.anthropic import AnthropicProvider
from batchgate.providers.base import Budget
from batchgate.providers.openai import OpenAIProvider
from batchgate.providers.ratelimits import (
    anthropic_budgets,
    openai_budgets,
    parse_duration,
    parse_reset_time,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0), ("6m0s", 360.0), ("59.5s", 59.5), ("120ms", 0.12), ("1h2m3s", 3723.0),
        ("17ms", 0.017), ("2", 2.0), ("0.25", 0.25), ("1m30.5s", 90.5), ("0s", 0.0),
        ("", None), ("soon", None), ("1x", None), ("-1s", None), ("1s garbage", None),
        (None, None),
    ],
)  # fmt: skip
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    got = parse_duration(text)
    assert got == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_reset_time() -> None:
    now = 1_800_000_000.0
    at = datetime.fromtimestamp(now + 12.5, UTC).isoformat().replace("+00:00", "Z")
    assert parse_reset_time(at, now) == pytest.approx(12.5)
    past = datetime.fromtimestamp(now - 5, UTC).isoformat()
    assert parse_reset_time(past, now) == 0.0
    assert parse_reset_time("2026-12-04T10:00:00", now) is None  # no zone: not RFC 3339
    assert parse_reset_time("garbage", now) is None
    assert parse_reset_time(None, now) is None


def test_openai_budgets() -> None:
    headers = {
        "x-ratelimit-limit-requests": "1200", "x-ratelimit-remaining-requests": "1180",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1999000", "x-ratelimit-reset-tokens": "30ms",
    }  # fmt: skip
    assert openai_budgets(headers) == (
        Budget("requests", 1200, 1180, 1.0),
        Budget("tokens", 2_000_000, 1_999_000, 0.03),
    )
    assert openai_budgets({"x-ratelimit-remaining-requests": "3"}) == (
        Budget("requests", None, 3, None),
    )
    assert openai_budgets({"x-ratelimit-remaining-requests": "lots"}) == ()
    p = OpenAIProvider(UpstreamConfig("o", "http://127.0.0.1:9/v1"))
    assert p.budgets(headers) == openai_budgets(headers)
    assert p.budgets({}) == ()


def test_anthropic_budgets() -> None:
    now = datetime.now(UTC)
    reset = (now + timedelta(seconds=30)).isoformat()
    headers = {
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000",
        "anthropic-ratelimit-input-tokens-reset": reset,
    }  # fmt: skip
    got = anthropic_budgets(headers, now.timestamp())
    assert [(b.name, b.limit, b.remaining) for b in got] == [
        ("requests", 50, 49), ("input-tokens", 40000, 39000),
    ]  # fmt: skip
    assert all(b.reset == pytest.approx(30.0, abs=0.01) for b in got)
    p = AnthropicProvider(UpstreamConfig("a", "http://127.0.0.1:9/v1", kind="anthropic"))
    assert [b.name for b in p.budgets(headers)] == ["requests", "input-tokens"]
    assert p.budgets({}) == ()
