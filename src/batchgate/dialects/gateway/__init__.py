"""The inline gateway dialect: ``model: "provider:model"`` and ``requests[]`` in the create body;
stored as OpenAI batch lines, so its result lines and error envelope are OpenAI's; it shares
``/v1/batches`` with the OpenAI dialect."""

from __future__ import annotations

from batchgate.dialects.base import Dialect
from batchgate.dialects.gateway.create import create
from batchgate.dialects.gateway.wire import gateway_batch
from batchgate.dialects.openai.results import render
from batchgate.dialects.openai.wire import envelope

__all__ = ["DIALECT"]

DIALECT = Dialect("gateway", create, render, envelope, project=gateway_batch)
