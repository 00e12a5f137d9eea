"""Finalization: stream a finished batch's rows into output and error files, in input order,
each line rendered by the batch's dialect."""

from __future__ import annotations

import time

from batchgate import ids
from batchgate.dialects import DIALECTS
from batchgate.domain.records import Batch, FileRecord
from batchgate.domain.states import BatchStatus, RowState, on_finalize, on_finish
from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore

DEFAULT_OUTPUT_TTL = 30 * 86400


def finalize(store: Store, blobs: BlobStore, batch: Batch, token: str) -> bool:
    """Write the files and end the batch (completed, expired or cancelled). False if the claim
    was lost to another worker."""
    bid = batch.id
    if (
        batch.status == BatchStatus.IN_PROGRESS
        and store.advance_batch(
            bid, on_finalize, now=int(time.time()), token=token, keep_claim=True
        )
        is None
    ):
        return False
    out_id, err_id = ids.file_id(), ids.file_id()
    expired = False
    with blobs.writer(out_id) as out, blobs.writer(err_id) as err:
        renderer = DIALECTS[batch.dialect].render_result
        for row in store.iter_finished_rows(bid):
            good, data = renderer(bid, row)
            (out if good else err).write(data)
            expired = expired or row.state == RowState.EXPIRED
        out_bytes, err_bytes = out.tell(), err.tell()
    now = int(time.time())
    ttl = batch.output_expires_after or DEFAULT_OUTPUT_TTL
    new_files = []
    for fid, size, kind in ((out_id, out_bytes, "output"), (err_id, err_bytes, "error")):
        if size:
            new_files.append(_file_row(batch, fid, size, kind, now, ttl))
        else:
            blobs.delete(fid)
    files = {"output_file_id": out_id if out_bytes else None,
             "error_file_id": err_id if err_bytes else None}  # fmt: skip
    done = store.advance_batch(
        bid, on_finish(expired), now=now, token=token, values=files, new_files=new_files
    ) is not None  # fmt: skip
    if not done:
        for f in new_files:
            blobs.delete(f.blob_key)
    return done


def _file_row(batch: Batch, fid: str, size: int, kind: str, now: int, ttl: int) -> FileRecord:
    return FileRecord(
        id=fid, tenant=batch.tenant, filename=f"{batch.id}_{kind}.jsonl", purpose="batch_output",
        bytes=size, created_at=now, expires_at=now + ttl, blob_key=fid,
    )  # fmt: skip
