"""The Anthropic Message Batches dialect: inline ``requests[]`` of Messages params; one results
file with every outcome in it."""

from __future__ import annotations

from batchgate.dialects.anthropic.create import create
from batchgate.dialects.anthropic.results import render
from batchgate.dialects.anthropic.wire import envelope, message_batch
from batchgate.dialects.base import Dialect

__all__ = ["DIALECT"]

DIALECT = Dialect(
    "anthropic", create, render, envelope, project=message_batch, lines="messages",
    error_paths=("/v1/messages",),
)  # fmt: skip
