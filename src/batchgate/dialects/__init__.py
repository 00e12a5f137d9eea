"""The dialects batchgate speaks, each in its own module, reached through one table.

Adding a dialect: a folder here with its create check, result renderer, wire objects and
error envelope, whose ``__init__`` defines its ``Dialect``; one entry in ``DIALECTS``; and its
HTTP routes under ``api/<name>/``, listed in ``api/app.py``.
"""

from __future__ import annotations

from batchgate.dialects import anthropic, gateway, jobs, openai
from batchgate.dialects.base import ApiError, CreateContext, Dialect, Draft, View

__all__ = ["DIALECTS", "ApiError", "CreateContext", "Dialect", "Draft", "View", "dialect_of_path"]

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (openai.DIALECT, anthropic.DIALECT, gateway.DIALECT, jobs.DIALECT)
}


def dialect_of_path(path: str) -> Dialect:
    """The dialect whose envelope an error on ``path`` wears (OpenAI's unless another claims
    the path)."""
    for dialect in DIALECTS.values():
        if path.startswith(dialect.error_paths):
            return dialect
    return DIALECTS["openai"]
