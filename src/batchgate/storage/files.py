"""The Store's file rows (mixed into ``Store``): insert, get, list a page, delete; each read or
change scoped to a tenant when one is given. The content itself is a blob (``blobs.py``)."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from batchgate.domain.records import FileRecord, from_row
from batchgate.storage.schema import files
from batchgate.storage.sqltext import by_id


class FileRecords:
    """File rows; the Store provides ``read`` and ``write``."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...

    def insert_file(self, file: FileRecord) -> None:
        with self.write() as conn:
            conn.execute(insert(files).values(**dataclasses.asdict(file)))

    def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        with self.read() as conn:
            r = conn.execute(by_id(files, file_id, tenant)).mappings().first()
        return from_row(FileRecord, r) if r else None

    def list_files(
        self, tenant: str | None, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[FileRecord], bool]:
        q = select(files)
        if tenant is not None:
            q = q.where(files.c.tenant == tenant)
        if purpose:
            q = q.where(files.c.purpose == purpose)
        desc = order == "desc"
        if after:
            q = q.where(files.c.id < after if desc else files.c.id > after)
        q = q.order_by(files.c.id.desc() if desc else files.c.id.asc()).limit(limit + 1)
        with self.read() as conn:
            rows = [from_row(FileRecord, r) for r in conn.execute(q).mappings()]
        return rows[:limit], len(rows) > limit

    def delete_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        with self.write() as conn:
            r = conn.execute(by_id(files, file_id, tenant)).mappings().first()
            if r is None:
                return None
            conn.execute(delete(files).where(files.c.id == file_id))
        return from_row(FileRecord, r)
