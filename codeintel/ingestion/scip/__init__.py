"""SCIP (pyrefly) ingestion: run the indexer, decode its index, plan incremental runs."""
