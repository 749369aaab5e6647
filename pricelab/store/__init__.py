"""DuckDB store: connection, schema, ingest, runs and lineage."""

from pricelab.store.db import Store, resolve_db_path
from pricelab.store.ingest import IngestResult, ingest
from pricelab.store.runs import get_run, latest_run, list_runs, record_run, start_run

__all__ = [
    "IngestResult",
    "Store",
    "get_run",
    "ingest",
    "latest_run",
    "list_runs",
    "record_run",
    "resolve_db_path",
    "start_run",
]
