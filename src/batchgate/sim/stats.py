"""Cheap counters for ``GET /_sim/stats``: plain attributes and dicts bumped on the event loop,
read as a JSON-ready snapshot."""

from __future__ import annotations

from typing import Any


class SimStats:
    """Counters over the ``/v1`` POST model endpoints (OpenAI's and ``/v1/messages``) since
    start or the last reset.

    ``requests`` counts requests received (by ``by_path``); ``by_status`` counts replies sent,
    by status code; ``dropped`` counts connections closed by the drop fault; ``cancelled``
    counts replies never sent because the client went away first (e.g. during a slow reply);
    ``faults`` counts injected faults by kind; ``rate_limited`` counts 429s of the per-key RPM
    limit (``SimConfig.rpm_limit``; also in ``by_status``); ``in_flight`` is the number of
    requests being answered now and ``max_in_flight`` its peak. Only touched from the server's loop.
    """

    __slots__ = (
        "by_path",
        "by_status",
        "cancelled",
        "dropped",
        "faults",
        "in_flight",
        "max_in_flight",
        "rate_limited",
        "requests",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests = 0
        self.max_in_flight = 0
        self.dropped = 0
        self.cancelled = 0
        self.rate_limited = 0
        self.by_status: dict[int, int] = {}
        self.by_path: dict[str, int] = {}
        self.faults: dict[str, int] = {}

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` stays the true current value (requests still being
        answered will finish) and ``max_in_flight`` restarts from it."""
        self.requests = 0
        self.max_in_flight = self.in_flight
        self.dropped = 0
        self.cancelled = 0
        self.rate_limited = 0
        self.by_status = {}
        self.by_path = {}
        self.faults = {}

    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict (status codes as strings)."""
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "by_status": {str(code): n for code, n in sorted(self.by_status.items())},
            "dropped": self.dropped,
            "cancelled": self.cancelled,
            "rate_limited": self.rate_limited,
            "by_path": dict(self.by_path),
            "faults": dict(self.faults),
        }
