"""The Store's upstream health (mixed into ``SqlStore``): each worker's open circuits, so that
every process (the API's included) can say which upstreams are down.

A worker writes a row ``(upstream, owner)`` when its lane's circuit opens and refreshes it
while it stays open (``engine/worker.py``, every few seconds); it deletes the row when the
circuit closes or the worker stops. A row not refreshed for ``STALE`` seconds is a dead
worker's and is ignored. The table is tiny (one row per open circuit per worker): read whole.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text
from sqlalchemy.engine import Connection

from batchgate.domain.records import UpstreamHealth
from batchgate.storage.schema import upstream_health

STALE = 30.0  # seconds: a worker refreshes its open circuits every 5 s

_UPSERT = text(
    "INSERT INTO upstream_health (upstream, owner, since, last_error, updated_at) "
    "VALUES (:upstream, :owner, :since, :last_error, :now) "
    "ON CONFLICT (upstream, owner) DO UPDATE SET since = excluded.since, "
    "last_error = excluded.last_error, updated_at = excluded.updated_at"
)


class HealthRecords:
    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...

    def set_upstream_health(
        self, upstream: str, owner: str, since: float, last_error: str, now: float
    ) -> None:
        """``owner``'s circuit for ``upstream`` is open (since, and why)."""
        values = {"upstream": upstream, "owner": owner, "since": since,
                  "last_error": last_error[:500], "now": now}  # fmt: skip
        with self.write() as conn:
            conn.execute(_UPSERT, values)

    def clear_upstream_health(self, upstream: str, owner: str) -> None:
        """``owner``'s circuit for ``upstream`` closed (or the worker stops)."""
        t = upstream_health.c
        with self.write() as conn:
            conn.execute(delete(upstream_health).where(t.upstream == upstream, t.owner == owner))

    def unavailable_upstreams(self, now: float) -> dict[str, UpstreamHealth]:
        """The upstreams some live worker has an open circuit for, by name: opened at the
        earliest such worker's ``since``, with the most recent error."""
        t = upstream_health.c
        q = select(t.upstream, t.since, t.last_error, t.updated_at).where(
            t.updated_at >= now - STALE
        )
        out: dict[str, UpstreamHealth] = {}
        latest: dict[str, float] = {}
        with self.read() as conn:
            for name, since, error, updated in conn.execute(q).all():
                seen = out.get(name)
                first = since if seen is None or seen.since is None else min(seen.since, since)
                if seen is None or updated >= latest[name]:
                    latest[name] = updated
                    out[name] = UpstreamHealth(name, "unavailable", first, error)
                else:
                    out[name] = UpstreamHealth(name, "unavailable", first, seen.last_error)
        return out
