"""Pure domain: states, JSONL validation. Imports nothing of ours but errors and ids."""
