"""``python -m batchgate`` is the ``batchgate`` command."""

from batchgate.cli.main import main

main()
