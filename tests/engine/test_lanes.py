"""Lanes honour the upstream's own rate headers; Anthropic's are read by its provider."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from batchgate.config import UpstreamConfig
from batchgate.engine.lanes import Lane
from batchgate.providers.anthropic import AnthropicProvider
from batchgate.providers.base import Attempt
from batchgate.storage.types import LeasedRow

UP = UpstreamConfig("claude", "http://127.0.0.1:9/v1", kind="anthropic")


def _iso(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_a_spent_anthropic_budget_pauses_until_its_reset() -> None:
    p = AnthropicProvider(UP)
    hint = p.pause_hint({
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": _iso(3),
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": _iso(5),
    })  # fmt: skip
    assert hint is not None and 4.0 < hint <= 5.0
    assert p.pause_hint({"anthropic-ratelimit-requests-remaining": "7",
                         "anthropic-ratelimit-requests-reset": _iso(3)}) is None  # fmt: skip
    assert p.pause_hint({"anthropic-ratelimit-requests-remaining": "0",
                         "anthropic-ratelimit-requests-reset": "garbage"}) is None  # fmt: skip
    assert p.pause_hint({}) is None


def test_anthropic_provider_sends_its_headers_to_messages() -> None:
    p = AnthropicProvider(UP)
    assert p.url("/v1/chat/completions") == "http://127.0.0.1:9/v1/messages"
    assert p._headers["anthropic-version"] == "2023-06-01"


def test_the_lane_waits_out_a_pause() -> None:
    lane = Lane(UP, AnthropicProvider(UP))
    row = LeasedRow("b", 1, "c", "claude", b"{}", 5, 1, "t")
    lane.observe(Attempt(200, pause=0.3))
    started = time.monotonic()
    asyncio.run(lane.admit(row))
    assert time.monotonic() - started >= 0.25
    assert lane.paused_until <= time.monotonic()  # the pause is over: no further wait


def test_the_first_send_goes_alone_until_answered() -> None:
    """The rest of a lane waits for its first answer (its rate headers say what may follow)."""
    up = UpstreamConfig("o", "http://127.0.0.1:9/v1")
    lane = Lane(up, AnthropicProvider(UP))
    row = LeasedRow("b", 1, "c", "o", b"{}", 5, 1, "t")

    async def main() -> list[str]:
        order: list[str] = []

        async def first() -> None:
            await lane.admit(row)
            order.append("first admitted")
            await asyncio.sleep(0.2)
            order.append("first answered")
            lane.observe(Attempt(200))

        async def second() -> None:
            await asyncio.sleep(0.01)
            await lane.admit(row)
            order.append("second admitted")

        await asyncio.gather(first(), second())
        await lane.admit(row)  # answered once: no more waiting
        return order

    assert asyncio.run(main()) == ["first admitted", "first answered", "second admitted"]
