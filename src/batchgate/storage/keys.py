"""The Store's API keys: create, list, revoke, look up by hash (mixed into ``Store``).

Rows hold a key's hash and display prefix, never its secret; ``list_keys`` leaves even the hash
out. A name is unique among live keys, so a revoked name can be given to a new key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from batchgate import ids
from batchgate.domain.keys import ID_PREFIX
from batchgate.domain.records import ApiKey, from_row
from batchgate.errors import KeyNameTaken, KeyNotFound
from batchgate.storage.schema import api_keys

_SHOWN = [c for c in api_keys.c if c.name != "key_hash"]


class KeyRecords:
    """API key rows; the Store provides ``read`` and ``write``."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...

    def create_key(
        self, *, name: str, tenant: str, admin: bool, key_hash: str, prefix: str, now: int
    ) -> ApiKey:
        """Store a new key (``key_…`` id); the row as ``list_keys`` shows it."""
        row = {
            "id": ids.new_id(ID_PREFIX), "name": name, "tenant": tenant, "key_hash": key_hash,
            "prefix": prefix, "admin": admin, "created_at": now, "revoked_at": None,
        }  # fmt: skip
        try:
            with self.write() as conn:
                conn.execute(insert(api_keys).values(**row))
        except IntegrityError:
            raise KeyNameTaken(
                f"A live key is already named {name!r}: revoke it first "
                f"(`batchgate keys revoke {name}`) or choose another name.",
                param="name",
            ) from None
        return from_row(ApiKey, row)

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first; without hashes."""
        with self.read() as conn:
            rows = conn.execute(select(*_SHOWN).order_by(api_keys.c.id)).mappings()
            return [from_row(ApiKey, r) for r in rows]

    def revoke_key(self, id_or_name: str, now: int) -> ApiKey:
        """Revoke the key with this id, or the live key with this name; revoking a revoked key
        changes nothing. Returns the key's row (``revoked_at`` set)."""
        match = or_(
            api_keys.c.id == id_or_name,
            (api_keys.c.name == id_or_name) & api_keys.c.revoked_at.is_(None),
        )
        with self.write() as conn:
            row = conn.execute(select(*_SHOWN).where(match)).mappings().first()
            if row is None:
                raise KeyNotFound(
                    f"No key with id {id_or_name!r} and no live key named so; `batchgate keys "
                    "list` shows them.",
                    param="key",
                )
            if row["revoked_at"] is not None:
                return from_row(ApiKey, row)
            conn.execute(update(api_keys).where(api_keys.c.id == row["id"]).values(revoked_at=now))
        return from_row(ApiKey, {**row, "revoked_at": now})

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not (``revoked_at`` tells)."""
        with self.read() as conn:
            q = select(*_SHOWN).where(api_keys.c.key_hash == key_hash)
            r = conn.execute(q).mappings().first()
        return from_row(ApiKey, r) if r else None

    def key_state(self) -> tuple[bool, bool]:
        """(any key is unrevoked, any key was ever made): with keys made and all revoked the
        server stays closed, it does not fall back to open mode."""
        live = select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None))
        ever = select(api_keys.c.id)
        with self.read() as conn:
            row = conn.execute(select(exists(live), exists(ever))).one()
        return bool(row[0]), bool(row[1])

    def has_live_keys(self) -> bool:
        """Whether any key is unrevoked: with none, the server may run open (loopback only)."""
        with self.read() as conn:
            live = select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None))
            return bool(conn.execute(select(exists(live))).scalar())
