"""The SqlStore's API keys, on SQLite and on real PostgreSQL (``db_url``)."""

from __future__ import annotations

import dataclasses

import pytest

from batchgate.domain.keys import check_name, hash_secret, issue
from batchgate.errors import InvalidRequest, KeyNameTaken, KeyNotFound
from batchgate.storage.sql import SqlStore


def _create(store: SqlStore, name: str, tenant: str = "t", admin: bool = False) -> tuple[str, str]:
    key = issue()
    row = store.create_key(
        name=name, tenant=tenant, admin=admin, key_hash=key.key_hash, prefix=key.prefix, now=100
    )
    return row.id, key.secret


def test_keys_are_created_found_by_hash_listed_and_revoked(store: SqlStore) -> None:
    assert not store.has_live_keys()
    kid, secret = _create(store, "alice", tenant="team-a", admin=True)
    assert kid.startswith("key_") and store.has_live_keys()
    found = store.key_by_hash(hash_secret(secret))
    assert found is not None
    assert (found.id, found.tenant, found.admin) == (kid, "team-a", True)
    assert found.revoked_at is None and not hasattr(found, "key_hash")
    assert store.key_by_hash(hash_secret(secret + "x")) is None

    [listed] = store.list_keys()
    assert {f.name for f in dataclasses.fields(listed)} == {
        "id", "name", "tenant", "prefix", "admin", "created_at", "revoked_at",
    }  # fmt: skip
    assert secret.startswith(listed.prefix) and len(listed.prefix) < 12

    revoked = store.revoke_key("alice", now=200)
    assert (revoked.id, revoked.revoked_at) == (kid, 200)
    assert not store.has_live_keys()
    after = store.key_by_hash(hash_secret(secret))
    assert after is not None and after.revoked_at == 200
    assert store.revoke_key(kid, now=300).revoked_at == 200  # by id, and idempotent


def test_names_are_unique_among_live_keys_only(store: SqlStore) -> None:
    first, _ = _create(store, "bob")
    with pytest.raises(KeyNameTaken):
        _create(store, "bob")
    store.revoke_key("bob", now=1)
    second, _ = _create(store, "bob")  # a revoked name can be reused
    assert store.revoke_key("bob", now=2).id == second  # by name: the live one
    with pytest.raises(KeyNotFound):
        store.revoke_key("bob", now=3)  # no live key of that name now
    assert [k.id for k in store.list_keys()] == [first, second]


def test_unknown_key_and_bad_names_are_refused(store: SqlStore) -> None:
    with pytest.raises(KeyNotFound):
        store.revoke_key("key_nope", now=1)
    for bad in ("", "key_x", "has space", "-dash", "x" * 65):
        with pytest.raises(InvalidRequest):
            check_name(bad, "name")
    assert check_name("team.a@corp-1_x", "tenant") == "team.a@corp-1_x"
