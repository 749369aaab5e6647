"""The Python API: one function per command. The CLI calls these and only these.

Every function opens the database itself (``db``: a path, or None for ``$PRICELAB_DB`` /
``./pricelab.duckdb``) and closes it before returning, so a batch job never holds a lock
longer than one call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.quality import QualityReport, check_loaded
from pricelab.store import IngestResult, Store
from pricelab.store import get_run as _get_run
from pricelab.store import ingest as _ingest
from pricelab.store import list_runs as _list_runs

PathLike = str | os.PathLike[str]


def ingest(
    db: PathLike | None = None, *, sales: PathLike | None = None, items: PathLike | None = None,
    costs: PathLike | None = None, markets: PathLike | None = None,
    inventory: PathLike | None = None, replace: bool = False,
) -> IngestResult:
    """Validate the given files and load them into the database in one transaction.

    Raises
    ------
    InputFileError, DataError
        A file is unreadable or breaks a data-quality rule; the database is unchanged.
    StoreError
        The database cannot be opened (missing folder, not DuckDB, locked).
    """
    files = {"sales": sales, "items": items, "costs": costs, "markets": markets,
             "inventory": inventory}
    with Store.open(db) as store:
        return _ingest(store, files, replace=replace)


def validate(db: PathLike | None = None) -> QualityReport:
    """Data-quality report on what is loaded (errors and warnings)."""
    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        return check_loaded(store)


def runs(db: PathLike | None = None, *, command: str | None = None) -> pl.DataFrame:
    """Every recorded run, newest first."""
    with Store.open(db, must_exist=True, read_only=True) as store:
        return _list_runs(store, command)


def run(db: PathLike | None, run_id: str) -> dict[str, Any]:
    """One run with its parameters, input fingerprint, parents and summary."""
    with Store.open(db, must_exist=True, read_only=True) as store:
        return _get_run(store, run_id)


def sample_files() -> dict[str, Path]:
    """Paths of the bundled sample marketplace files by table kind."""
    from pricelab._resources import sample_dir

    d = sample_dir()
    return {k: d / f"{k}.csv" for k in ("sales", "items", "costs", "markets", "inventory")
            if (d / f"{k}.csv").exists()}


def demo(db: PathLike | None = None) -> dict[str, Any]:
    """Build a database from the bundled sample and run the whole pipeline on it.

    Parameters
    ----------
    db:
        Where to build the database; a new temporary folder when None.

    Returns
    -------
    dict
        ``db`` (the path) and ``steps``: a list of ``{"step", "summary"}`` records.
    """
    import tempfile

    path = Path(db) if db is not None else Path(tempfile.mkdtemp(prefix="pricelab-demo-")) / "demo.duckdb"
    steps: list[dict[str, Any]] = []
    files = sample_files()
    result = ingest(path, replace=True, **files)
    steps.append({"step": "ingest", "summary": result.to_dict()})
    report = validate(path)
    steps.append({"step": "validate", "summary": report.to_dict()})
    for step, fn in _DEMO_STEPS:
        steps.append({"step": step, "summary": fn(path)})
    return {"db": str(path), "steps": steps}


# Later pipeline steps add themselves here: (name, function(db_path) -> JSON-able summary).
_DEMO_STEPS: list[tuple[str, Any]] = []
