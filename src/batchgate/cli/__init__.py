"""The command line: serve, worker, simulate (client commands arrive with the SDK)."""
