"""Storage: the Store (rows in SQLite or PostgreSQL, chosen by URL) and the blob store."""

from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import Store, open_store

__all__ = ["BlobStore", "Store", "open_store"]
