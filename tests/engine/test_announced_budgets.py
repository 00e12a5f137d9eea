"""A lane learns the budget an upstream announces in its rate headers and paces to it: the
simulator's per-key requests-per-minute limit with OpenAI-style ``x-ratelimit-*`` headers."""

from __future__ import annotations

import asyncio

from batchgate.config import UpstreamConfig
from batchgate.engine.lanes import Lane
from batchgate.providers.openai import OpenAIProvider
from batchgate.sim import SimHandle
from batchgate.storage.types import LeasedRow

BODY = b'{"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}'


def test_a_lane_paces_to_the_announced_request_budget(sim: SimHandle) -> None:
    # 600 a minute = 10 per second, a burst of 5: 20 sends take about 1.5 s when paced
    sim.configure(rpm_limit=600, rpm_burst=5)
    up = UpstreamConfig("sim", sim.url, concurrency=4)

    async def main() -> list[int | None]:
        lane = Lane(up, OpenAIProvider(up))
        statuses = []
        try:
            for i in range(20):
                row = LeasedRow("b", i, f"c{i}", "sim", BODY, 10, 1, "t")
                await lane.admit(row)
                attempt = await lane.provider.send("/v1/chat/completions", row.body)
                lane.observe(attempt)
                statuses.append(attempt.status)
        finally:
            await lane.provider.close()
        budget = lane.announced["requests"]
        assert budget.rate is not None and 8.0 <= budget.rate <= 12.0  # learned: ~10/s
        return statuses

    statuses = asyncio.run(main())
    # unpaced, 20 back-to-back sends against a burst of 5 would meet about 15 429s
    assert statuses.count(429) <= 2, statuses
    assert sim.stats()["by_status"].get("429", 0) == statuses.count(429)
