"""Data commands: ingest, validate, runs and their lineage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pricelab.store import Store
from pricelab.store import get_run as _get_run
from pricelab.store import list_runs as _list_runs
from pricelab.store.db import resolve_db_path
from pricelab.store.runs import record_run

if TYPE_CHECKING:  # imported when used: most commands neither ingest nor validate
    from pricelab.quality import QualityReport
    from pricelab.store.ingest import IngestResult

PathLike = str | os.PathLike[str]


def ingest(
    db: PathLike | None = None,
    *,
    sales: PathLike | None = None,
    items: PathLike | None = None,
    costs: PathLike | None = None,
    markets: PathLike | None = None,
    inventory: PathLike | None = None,
    replace: bool = False,
) -> IngestResult:
    """Validate the given files and load them into the database in one transaction.

    Raises
    ------
    InputFileError, DataError
        A file is unreadable or breaks a data-quality rule; the database is unchanged (a
        database this call would have created is not left behind).
    StoreError
        The database cannot be opened (missing folder, not DuckDB, locked).
    """
    from pricelab.store.ingest import ingest as _ingest

    files = {
        "sales": sales,
        "items": items,
        "costs": costs,
        "markets": markets,
        "inventory": inventory,
    }
    path = resolve_db_path(db)
    new = not path.exists()
    try:
        with Store.open(db) as store:
            return _ingest(store, files, replace=replace)
    except BaseException:
        if new:  # nothing was loaded: leave no empty database behind
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise


def validate(db: PathLike | None = None, *, record: bool = True) -> QualityReport:
    """Data-quality report on what is loaded (errors and warnings).

    The checks only read, so a read-only database file (or one another reader has open)
    is fine. Then, unless ``record=False``, the report is recorded as a ``validate`` run
    (status ``ok`` or ``failed``, the report as its summary; ``report.run_id``), the same
    run the pipeline records; when the file cannot be written now (read-only, or another
    process holds it) the report is returned unrecorded (``run_id`` None).
    """
    from pricelab.quality import check_loaded

    with Store.open(db, must_exist=True, read_only=True) as store:
        store.require_sales()
        report = check_loaded(store)
    if record:
        report.run_id = record_when_writable(
            db, "validate", {}, report.to_dict(), "ok" if report.ok else "failed"
        )
    return report


def record_when_writable(
    db: PathLike | None, command: str, parameters: dict[str, Any], summary: dict, status: str
) -> str | None:
    """Record a run of a read-only command (``record_run``); None when the file is locked
    by another process or cannot be written."""
    from pricelab.errors import StoreError, UnavailableError

    try:
        with Store.open(db, must_exist=True) as store:
            run = record_run(store, command, parameters)
            run.finish(summary, status=status)
            return run.run_id
    except (StoreError, UnavailableError, OSError):
        return None


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
    return {
        k: d / f"{k}.csv"
        for k in ("sales", "items", "costs", "markets", "inventory")
        if (d / f"{k}.csv").exists()
    }


# -- lineage, monitoring ------------------------------------------------------------------
def diff_runs(db: PathLike | None, run_a: str, run_b: str) -> Any:
    """What changed from run ``run_a`` to ``run_b``: a :class:`pricelab.store.lineage.RunDiff`.

    Parameters that differ, input tables whose fingerprint (rows, date range, hash) differs,
    and for two estimate runs the items whose elasticity intervals no longer overlap.

    Raises
    ------
    NotFoundError
        Either run does not exist.
    """
    from pricelab.store.lineage import diff_runs as _diff

    with Store.open(db, must_exist=True, read_only=True) as store:
        return _diff(store, run_a, run_b)


def sample(
    out: PathLike, *, generate: bool = False, seed: int | None = None, db: PathLike | None = None
) -> tuple[dict[str, Path], IngestResult | None]:
    """Copy the bundled sample marketplace (CSV files, constraints and scenario YAML) to ``out``.

    With ``generate`` the CSV files are made afresh by the seeded generator instead
    (``seed`` default: the bundled one), byte-identical to the bundled files for that seed.
    With ``db`` the tables are also ingested there (keys replaced). Returns the files written
    and the ingest result (None without ``db``).
    """
    import shutil

    from pricelab._resources import sample_dir
    from pricelab.errors import UsageError

    target = Path(out)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: exists and is not a folder")
    target.mkdir(parents=True, exist_ok=True)
    src = sample_dir()
    written: dict[str, Path] = {}
    if generate:
        from pricelab.sample import generate_sample, generate_substitutes

        written.update(
            generate_sample(target) if seed is None else generate_sample(target, seed=seed)
        )
        written.update(generate_substitutes(target))
    for f in sorted(src.iterdir()):
        if f.suffix in (".csv", ".yaml", ".md") and (not generate or f.suffix != ".csv"):
            shutil.copyfile(f, target / f.name)
            written.setdefault(f.stem, target / f.name)
    if db is None:
        return written, None
    tables = {
        k: v for k, v in written.items() if k in ("sales", "items", "costs", "markets", "inventory")
    }
    return written, ingest(db, replace=True, **tables)
