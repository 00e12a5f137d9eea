"""The Anthropic Message Batches dialect."""
