"""The dialects batchgate speaks, each in its own module, reached through one table.

Adding a dialect: a module here defining its ``Dialect`` (create check, result renderer, how
its lines are read), one entry in ``DIALECTS``, and its routes under ``api/``.
"""

from __future__ import annotations

from batchgate.dialects import anthropic, gateway, jobs, openai
from batchgate.dialects.base import CreateContext, Dialect, Draft

__all__ = ["DIALECTS", "CreateContext", "Dialect", "Draft"]

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (openai.DIALECT, anthropic.DIALECT, gateway.DIALECT, jobs.DIALECT)
}
