"""The OpenAI Files + Batches dialect: a batch reads an uploaded JSONL file; its results are
the output and error files."""

from __future__ import annotations

from batchgate.dialects.base import Dialect
from batchgate.dialects.openai.create import ENDPOINTS, check_metadata, completion_window, create
from batchgate.dialects.openai.results import line_id, render
from batchgate.dialects.openai.wire import batch_object, envelope

__all__ = ["DIALECT", "ENDPOINTS", "check_metadata", "completion_window", "line_id", "render"]

DIALECT = Dialect("openai", create, render, envelope, project=batch_object)
