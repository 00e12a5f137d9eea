"""The ``upstreams`` extension field of a batch object: each upstream its rows go to, and
whether the workers can reach it (their circuits: ``engine/circuit.py``).

``[{"name": "local", "state": "unavailable", "since": 1796083200, "last_error": "…"}]``;
``state`` is ``available`` or ``unavailable``, ``since`` (Unix seconds) and ``last_error`` are
null for an available one. Empty until the batch's input was validated.
"""

from __future__ import annotations

from typing import Any

from batchgate.domain.records import Batch

__all__ = ["upstreams_object"]


def upstreams_object(batch: Batch) -> list[dict[str, Any]]:
    return [
        {
            "name": h.name,
            "state": h.state,
            "since": int(h.since) if h.since is not None else None,
            "last_error": h.last_error,
        }
        for h in batch.health
    ]
