"""Upstream health in the store, on both backends: each worker's open circuits, read by any
process (batchgate.storage.health)."""

from __future__ import annotations

from batchgate.domain.records import UpstreamHealth
from batchgate.storage.health import STALE
from batchgate.storage.sql import SqlStore


def test_open_circuits_are_shared_refreshed_and_cleared(store: SqlStore) -> None:
    now = 1_800_000_000.0
    assert store.unavailable_upstreams(now) == {}
    store.set_upstream_health("local", "w1", now - 10, "refused", now - 5)
    store.set_upstream_health("local", "w2", now - 20, "timed out", now - 1)
    store.set_upstream_health("other", "w1", now - 3, "502", now - 2)
    got = store.unavailable_upstreams(now)
    # the earliest since, the freshest error
    assert got["local"] == UpstreamHealth("local", "unavailable", now - 20, "timed out")
    assert got["other"] == UpstreamHealth("other", "unavailable", now - 3, "502")
    store.set_upstream_health("local", "w2", now - 20, "reset by peer", now)  # a refresh
    assert store.unavailable_upstreams(now)["local"].last_error == "reset by peer"
    store.clear_upstream_health("local", "w2")
    store.clear_upstream_health("local", "w2")  # twice is fine
    assert store.unavailable_upstreams(now)["local"].since == now - 10
    # a worker that stopped refreshing is gone
    assert "local" not in store.unavailable_upstreams(now - 5 + STALE + 1)
    store.clear_upstream_health("local", "w1")
    assert set(store.unavailable_upstreams(now)) == {"other"}


def test_a_long_error_is_cut(store: SqlStore) -> None:
    store.set_upstream_health("u", "w", 1.0, "x" * 5000, 2.0)
    assert len(store.unavailable_upstreams(2.0)["u"].last_error or "") == 500
