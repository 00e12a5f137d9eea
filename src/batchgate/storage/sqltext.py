"""SQL text built from the state enums, so that no status literal is written by hand in a query
(a partial index's predicate stays matched: the literal is the enum's value)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, Table, false, select


def lit(value: StrEnum) -> str:
    """An enum value as an SQL string literal (the values are fixed identifiers)."""
    return f"'{value.value}'"


def lits(values: Iterable[StrEnum]) -> str:
    """Enum values as a comma-separated list of SQL string literals, for ``IN (...)``."""
    return ", ".join(lit(v) for v in values)


def by_id(table: Table, record_id: str, tenant: str | None) -> Select[Any]:
    """The row of ``table`` with ``record_id``, within ``tenant`` when one is given."""
    if "\x00" in record_id:  # no row's id holds one, and PostgreSQL text cannot: none matches
        return select(table).where(false())
    q = select(table).where(table.c.id == record_id)
    return q if tenant is None else q.where(table.c.tenant == tenant)
