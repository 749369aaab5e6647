"""DuckDB store: connection, schema, ingest, runs and lineage.

``ingest`` and ``IngestResult`` are imported on first use: every command opens the store,
only ``pricelab ingest`` (and the pipeline) loads files into it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from pricelab.store.db import Store, resolve_db_path
from pricelab.store.runs import get_run, latest_run, list_runs, record_run, start_run

if TYPE_CHECKING:
    from pricelab.store.ingest import IngestResult, ingest

_LAZY = {"IngestResult": "pricelab.store.ingest", "ingest": "pricelab.store.ingest"}

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pricelab.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing the submodule ``pricelab.store.ingest`` does not bind it over the function
    ``pricelab.store.ingest`` (which the eager import used to rebind)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
