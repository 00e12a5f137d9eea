"""The Store's batches (mixed into ``SqlStore``): insert, read, page, delete; the one door every
batch state change goes through (``advance_batch``); the claims under which one worker at a
time validates or finalizes a batch; which batches a sweep must end rows of.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Connection

from batchgate.domain.records import Batch, FileRecord, from_row
from batchgate.domain.states import (
    BatchStatus,
    Rule,
    advance,
    stamp_of,
)
from batchgate.domain.sweeps import Sweep, cancelled_sweep, expired_sweep
from batchgate.storage.rows import drop_rows as drop_batch_rows
from batchgate.storage.schema import batches, files
from batchgate.storage.sqltext import by_id, lit, lits

_S = BatchStatus
# A batch cancelled before it was ever validated still needs its rows (each one ends as a
# cancelled result): it is claimed for validation too, once.
_NEVER_READ = f"(status = {lit(_S.CANCELLING)} AND in_progress_at IS NULL AND failed_at IS NULL)"
_FINALIZABLE = lits([_S.IN_PROGRESS, _S.CANCELLING, _S.FINALIZING])
RowsStep = Callable[[Connection], Mapping[str, Any]]
"""A change of a batch's rows inside ``advance_batch``'s transaction; returns the batch's
column values that go with it (counters, as SQL expressions or values)."""


class BatchRecords:
    """Batch rows; the SqlStore provides the connection helpers."""

    if TYPE_CHECKING:
        is_postgres: bool

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...
        def _skip_locked(self) -> str: ...
        def budget_sweeps(self, now: float) -> list[Sweep]: ...

    def insert_batch(self, batch: Batch) -> None:
        with self.write() as conn:
            row = dataclasses.asdict(batch)
            del row["health"]  # read from the workers' circuits, not stored with the batch
            conn.execute(insert(batches).values(**row))

    def get_batch(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        with self.read() as conn:
            r = conn.execute(by_id(batches, batch_id, tenant)).mappings().first()
        return from_row(Batch, r) if r else None

    def list_batches(
        self,
        tenant: str | None,
        *,
        after: str | None,
        limit: int,
        dialect: str | Collection[str] | None = None,
        before: str | None = None,
    ) -> tuple[list[Batch], bool]:
        """Newest first. ``after``: the page older than that id; ``before``: the page newer
        than that id (still newest first). ``dialect``: one name, or any of several."""
        q = select(batches)
        if tenant is not None:
            q = q.where(batches.c.tenant == tenant)
        if dialect is not None:
            q = q.where(batches.c.dialect.in_([dialect] if isinstance(dialect, str) else dialect))
        if after:
            q = q.where(batches.c.id < after)
        if before:
            q = q.where(batches.c.id > before).order_by(batches.c.id.asc())
        else:
            q = q.order_by(batches.c.id.desc())
        with self.read() as conn:
            rows = [from_row(Batch, r) for r in conn.execute(q.limit(limit + 1)).mappings()]
        page = rows[:limit]
        return (page[::-1] if before else page), len(rows) > limit

    def delete_batch(self, batch_id: str) -> None:
        """Remove an ended batch, its rows and its result files' rows."""
        with self.write() as conn:
            row = conn.execute(by_id(batches, batch_id, None)).mappings().first()
            if row is None:
                return
            for fid in (row["output_file_id"], row["error_file_id"]):
                if fid:
                    conn.execute(delete(files).where(files.c.id == fid))
            drop_batch_rows(conn, batch_id)
            conn.execute(delete(batches).where(batches.c.id == batch_id))

    # -- the one door ---------------------------------------------------------------------

    def advance_batch(
        self,
        batch_id: str,
        rule: Rule,
        *,
        now: int,
        token: str | None = None,
        tenant: str | None = None,
        values: Mapping[str, Any] | None = None,
        new_files: Sequence[FileRecord] = (),
        drop_rows: bool = False,
        keep_claim: bool = False,
        rows_step: RowsStep | None = None,
    ) -> BatchStatus | None:
        """Every batch state change: read the status (under the claim ``token`` when given,
        within ``tenant`` when given, locked on PostgreSQL), let ``rule`` pick the move, check
        it against the transition table (an illegal move raises InvalidTransition), stamp
        ``<status>_at``, and write it with ``values``, ``new_files``, with ``drop_rows`` the
        removal of the batch's request rows, and with ``rows_step`` a change of its rows run
        once the move is checked (its returned column values are written too), all in one
        transaction. With a token, the claim is released unless ``keep_claim`` (the step is
        not the claim's last). The status after the move; None when the batch is not there
        (or the claim was lost): nothing changed."""
        with self.write() as conn:
            current = self._status(conn, batch_id, token, tenant)
            if current is None:
                return None
            target = rule(current)
            changes = dict(values or {})
            if target is not None:
                changes.update(status=advance(current, target).value, **{stamp_of(target): now})
            if token is not None and not keep_claim:
                changes.update(claim_token=None, claim_expires_at=None)
            if drop_rows:
                drop_batch_rows(conn, batch_id)
            if rows_step is not None:
                changes.update(rows_step(conn))
            for f in new_files:
                conn.execute(insert(files).values(**dataclasses.asdict(f)))
            if changes:
                conn.execute(update(batches).where(batches.c.id == batch_id).values(**changes))
        return current if target is None else target

    def _status(
        self, conn: Connection, batch_id: str, token: str | None, tenant: str | None
    ) -> BatchStatus | None:
        q = select(batches.c.status).where(batches.c.id == batch_id).with_for_update()
        if token is not None:
            q = q.where(batches.c.claim_token == token)
        if tenant is not None:
            q = q.where(batches.c.tenant == tenant)
        status = conn.execute(q).scalar()
        return None if status is None else BatchStatus(status)

    # -- claims (validation and finalization run under a batch claim) -----------------------

    def claim_batch(
        self, statuses: Sequence[BatchStatus], token: str, now: float, ttl: float
    ) -> Batch | None:
        """Claim one batch in ``statuses`` whose claim is free or expired; None if none."""
        never_read = _NEVER_READ if BatchStatus.VALIDATING in statuses else "1 = 0"
        return self._claim(f"(status IN ({lits(statuses)}) OR {never_read})", token, now, ttl)

    def claim_finalizable(self, token: str, now: float, ttl: float) -> Batch | None:
        """Claim a batch that has no open row left and is not ended yet."""
        where = f"status IN ({_FINALIZABLE}) AND completed + failed >= total"
        return self._claim(where, token, now, ttl)

    def _claim(self, where: str, token: str, now: float, ttl: float) -> Batch | None:
        sql = text(
            "UPDATE batches SET claim_token = :token, claim_expires_at = :until WHERE id = ("
            f"SELECT id FROM batches WHERE {where} "
            "AND (claim_expires_at IS NULL OR claim_expires_at < :now) "
            f"ORDER BY created_at LIMIT 1{self._skip_locked()}) RETURNING id"
        )
        with self.write() as conn:
            got = conn.execute(sql, {"token": token, "until": now + ttl, "now": now}).scalar()
        return self.get_batch(got) if got else None

    def renew_claim(self, batch_id: str, token: str, until: float) -> bool:
        with self.write() as conn:
            res = conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.claim_token == token)
                .values(claim_expires_at=until)
            )
        return res.rowcount == 1

    # -- which batches need what --------------------------------------------------------------

    def dispatchable_batches(self, now: float) -> list[tuple[str, str]]:
        """(id, endpoint) of batches whose queued rows may be sent now."""
        with self.read() as conn:
            rows = conn.execute(
                select(batches.c.id, batches.c.endpoint)
                .where(batches.c.status == BatchStatus.IN_PROGRESS.value)
                .where(batches.c.expires_at > now)
                .order_by(batches.c.created_at)
            ).all()
        return [(str(r.id), str(r.endpoint)) for r in rows]

    def batches_to_sweep(self, now: float) -> list[Sweep]:
        """Batches whose queued rows must end without being sent: cancelled, past expiry, or
        at their budget or their tenant's."""
        with self.read() as conn:
            rows = conn.execute(
                select(batches.c.id, batches.c.status, batches.c.expires_at).where(
                    batches.c.status.in_([_S.CANCELLING.value, _S.IN_PROGRESS.value])
                )
            ).all()
        out = []
        for r in rows:
            if r.status == _S.CANCELLING:
                out.append(cancelled_sweep(str(r.id)))
            elif r.expires_at <= now:
                out.append(expired_sweep(str(r.id)))
        ending = {s.batch_id for s in out}
        return out + [s for s in self.budget_sweeps(now) if s.batch_id not in ending]
