"""Storage: the SqlStore (rows in SQLite or PostgreSQL, chosen by URL) and the blob store."""

from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import SqlStore, open_store

__all__ = ["BlobStore", "SqlStore", "Store", "open_store"]
