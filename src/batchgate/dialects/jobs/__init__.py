"""The jobs dialect (``/qai/v1/batch…``): plain-prompt jobs, one row each; its files are
OpenAI-format, its answers job objects."""

from __future__ import annotations

from batchgate.dialects.base import Dialect
from batchgate.dialects.jobs.create import create
from batchgate.dialects.jobs.wire import envelope
from batchgate.dialects.openai.results import render

__all__ = ["DIALECT"]

DIALECT = Dialect("jobs", create, render, envelope, error_paths=("/qai/",))
