"""The HTTP API: app factory, error rendering, and one sub-package per dialect."""

from batchgate.api.app import Runtime, create_app

__all__ = ["Runtime", "create_app"]
