"""The Store's retry of a batch's failed rows (mixed into ``SqlStore``): the rows that ended
``failed`` (all, or those with some error codes) are queued again with their attempts reset,
and the batch is reopened so that the worker sends them and finalizes it once more
(``batchgate run --retry-failed``). Rows ingest failed (no upstream serves their model, they
cannot be translated) are never queued again: they were never sendable.

Both doors are used: the batch's move through ``advance_batch`` with ``on_retry`` (a completed
batch reopens, a running one stays running), the rows' move through ``row_move_sql``
(``failed -> queued``), in one transaction with the batch's counters, which lose the rows'
failure, tokens and cost, so that they stay sums over the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from batchgate.domain.states import RowState, Rule, on_retry
from batchgate.storage.rows import FREE_LEASE, row_move_sql
from batchgate.storage.schema import batches
from batchgate.storage.sqltext import lit

if TYPE_CHECKING:
    from batchgate.domain.records import FileRecord
    from batchgate.domain.states import BatchStatus
    from batchgate.storage.batches import RowsStep

_R = RowState
_SENDABLE = "batch_id = :batch_id AND upstream IS NOT NULL"
_RESET = (
    "attempts = 0, next_attempt_at = 0, status_code = NULL, response = NULL, "
    "request_id = NULL, error_code = NULL, error_message = NULL, finished_at = NULL, "
    "input_tokens = 0, output_tokens = 0, cached_tokens = 0, reasoning_tokens = 0, "
    f"cost_ticks = NULL, {FREE_LEASE}"
)
# What the moved rows had added to their batch's counters (``rows.py`` ``_add``).
_SUMS = (
    "COUNT(*) AS failed, COALESCE(SUM(input_tokens), 0) AS input_tokens, "
    "COALESCE(SUM(output_tokens), 0) AS output_tokens, "
    "COALESCE(SUM(cached_tokens), 0) AS cached_tokens, "
    "COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens, "
    "COALESCE(SUM(cost_ticks), 0) AS cost_ticks, "
    "COALESCE(SUM(CASE WHEN cost_ticks IS NULL AND input_tokens + output_tokens > 0 "
    "THEN 1 ELSE 0 END), 0) AS unpriced"
)


def _where(codes: Collection[str] | None) -> str:
    return _SENDABLE + (" AND error_code IN :codes" if codes is not None else "")


def _params(batch_id: str, codes: Collection[str] | None) -> dict[str, Any]:
    return {"batch_id": batch_id} | ({"codes": sorted(codes)} if codes is not None else {})


def _query(sql: str, codes: Collection[str] | None) -> Any:
    q = text(sql)
    return q.bindparams(bindparam("codes", expanding=True)) if codes is not None else q


_UNSUCCEEDED = f"state IN ({lit(_R.FAILED)}, {lit(_R.CANCELED)}, {lit(_R.EXPIRED)})"


class RequeueRecords:
    """The retry of failed rows; the SqlStore provides the connection helpers and the door."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...
        def advance_batch(
            self, batch_id: str, rule: Rule, *, now: int, token: str | None = None,
            tenant: str | None = None, values: Mapping[str, Any] | None = None,
            new_files: Sequence[FileRecord] = (), drop_rows: bool = False,
            keep_claim: bool = False, rows_step: RowsStep | None = None,
        ) -> BatchStatus | None: ...  # fmt: skip

    def failed_codes(self, batch_id: str) -> dict[str, int]:
        """How many rows of a batch ended failed and could be sent again, by error code."""
        sql = text(
            f"SELECT error_code, COUNT(*) FROM requests WHERE {_SENDABLE} "
            f"AND state = {lit(_R.FAILED)} GROUP BY error_code"
        )
        with self.read() as conn:
            rows = conn.execute(sql, {"batch_id": batch_id}).all()
        return {str(code or "unknown_error"): int(n) for code, n in rows}

    def unsucceeded_lines(
        self, batch_id: str, *, after: int, limit: int, codes: Collection[str] | None = None
    ) -> list[int]:
        """Up to ``limit`` input lines after ``after``, in order, whose rows ended without a
        result: failed, or never sent (cancelled, expired, kept back by a budget); only those
        whose error code is in ``codes`` when given. What a retry batch is made of."""
        sql = (
            f"SELECT line FROM requests WHERE batch_id = :batch_id AND {_UNSUCCEEDED} "
            f"AND line > :after{' AND error_code IN :codes' if codes is not None else ''} "
            "ORDER BY line LIMIT :limit"
        )
        params = _params(batch_id, codes) | {"after": after, "limit": limit}
        with self.read() as conn:
            return [int(r[0]) for r in conn.execute(_query(sql, codes), params)]

    def mark_retried(self, batch_id: str, retry_id: str | None, *, expect: str | None) -> bool:
        """Set a batch's ``retried_by`` to ``retry_id`` if it still is ``expect`` (None: not
        retried yet); whether it was set. The one check that two retries of a batch cannot
        both pass."""
        match = "retried_by IS NULL" if expect is None else "retried_by = :expect"
        sql = text(f"UPDATE batches SET retried_by = :retry_id WHERE id = :id AND {match}")
        with self.write() as conn:
            got = conn.execute(sql, {"retry_id": retry_id, "id": batch_id, "expect": expect})
            return int(got.rowcount) == 1

    def requeue_failed(
        self, batch_id: str, *, now: int, codes: Collection[str] | None = None,
        expires_at: int | None = None,
    ) -> int:  # fmt: skip
        """Queue a batch's failed rows again (only those whose error code is in ``codes``
        when given), due at once with no attempt made; a completed batch reopens, its result
        files and end stamps cleared (and its expiry moved to ``expires_at`` when given).
        How many rows were queued: 0 changes nothing. A batch in another status than
        completed or in_progress raises InvalidTransition, and nothing changes."""
        if not any(n for code, n in self.failed_codes(batch_id).items()
                   if codes is None or code in codes):  # fmt: skip
            return 0
        moved: list[int] = []

        def step(conn: Connection) -> dict[str, Any]:
            where, params = _where(codes), _params(batch_id, codes)
            sums = conn.execute(
                _query(f"SELECT {_SUMS} FROM requests WHERE {where} "
                       f"AND state = {lit(_R.FAILED)}", codes),
                params,
            ).mappings().one()  # fmt: skip
            conn.execute(_query(row_move_sql(_R.FAILED, _R.QUEUED, _RESET, where), codes), params)
            moved.append(int(sums["failed"]))
            return {name: batches.c[name] - int(value) for name, value in sums.items()}

        values: dict[str, Any] = {"finalizing_at": None, "completed_at": None,
                                  "output_file_id": None, "error_file_id": None}  # fmt: skip
        if expires_at is not None:
            values["expires_at"] = expires_at
        self.advance_batch(batch_id, on_retry, now=now, values=values, rows_step=step)
        return moved[0] if moved else 0
