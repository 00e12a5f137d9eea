"""The OpenAI Files + Batch dialect."""
