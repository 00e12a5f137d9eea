"""batchgate: a self-hosted LLM batch server (OpenAI Files + Batches on any upstream, durably)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
