"""The engine: ingest (validate into rows), lease, dispatch under limits, record, finalize."""
