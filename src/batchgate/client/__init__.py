"""The batchgate Python SDK: a blocking ``Client`` and an ``AsyncClient`` over httpx.

``Client(base_url=None, api_key=None, *, timeout=60.0, transport=None, http_client=None,
headers=None)``: ``base_url`` is the server root (a trailing ``/v1`` is dropped), by default
``$BATCHGATE_URL`` or ``http://127.0.0.1:8080``; ``api_key`` (default ``$BATCHGATE_API_KEY``)
goes out as ``Authorization: Bearer`` and ``x-api-key``; ``transport`` (e.g.
``httpx.MockTransport``) or a ready ``http_client`` replaces the network.
Resources: ``files``, ``batches`` (OpenAI dialect), ``messages.batches`` (Anthropic dialect).
Nothing here imports the rest of batchgate.
"""

from __future__ import annotations

from batchgate.client._async import AsyncClient
from batchgate.client._sync import Client
from batchgate.client.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchgateClientError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResultDecodeError,
    UnprocessableEntityError,
    WaitTimeout,
)
from batchgate.client.types import (
    BadLine,
    Batch,
    BatchError,
    BatchResult,
    Counts,
    Deleted,
    File,
    MessageBatch,
    MessageBatchResult,
    MessageRequestCounts,
    Page,
    RequestCounts,
    ResultError,
    Usage,
)

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadLine",
    "BadRequestError",
    "Batch",
    "BatchError",
    "BatchResult",
    "BatchgateClientError",
    "Client",
    "ConflictError",
    "Counts",
    "Deleted",
    "File",
    "InternalServerError",
    "MessageBatch",
    "MessageBatchResult",
    "MessageRequestCounts",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestCounts",
    "ResultDecodeError",
    "ResultError",
    "UnprocessableEntityError",
    "Usage",
    "WaitTimeout",
]
