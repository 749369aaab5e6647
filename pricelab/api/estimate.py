"""``estimate``: elasticities stored as a run (local or Spark engine)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pricelab.api.results import EstimateRun
from pricelab.store import Store

if TYPE_CHECKING:
    from pricelab.api.cross import CrossEstimateRun

PathLike = str | os.PathLike[str]


# -- estimation ---------------------------------------------------------------------------


def estimate(
    db: PathLike | None = None,
    *,
    model: str = "hierarchical",
    by: str | None = None,
    instrument: str | None = None,
    slope: str = "item",
    before: str | None = None,
    engine: str = "local",
    source: PathLike | str | None = None,
    mlflow: Any = None,
    se: str | None = None,
    hac_lags: int | None = None,
    tau: str = "level",
    progress: Any = None,
    cross: str | None = None,
    controls: str | None = None,
    fixed_effects: str | None = None,
    output: PathLike | None = None,
) -> EstimateRun:
    """Estimate elasticities from the loaded sales and store them as an ``estimate`` run.

    With ``source``, sales are read from there instead (CSV/Parquet for ``local``;
    Parquet, ``delta:PATH`` or a table name for ``spark``) and the run is stored only
    when ``db`` is given (its items table is used when loaded); otherwise ``run_id`` is
    None.

    Parameters
    ----------
    model:
        ``ols``, ``poisson``, ``panel``, ``hierarchical`` (default) or ``iv``.
    by:
        Comma-separated group columns (default ``item_id,market``; for ``panel`` the pooling
        level, default category × market).
    instrument:
        ``iv`` only: a sales column (e.g. ``unit_cost``) or ``hausman``.
    before:
        Use only weeks before this ISO date.
    engine:
        ``local`` (default) or ``spark`` (:mod:`pricelab.engines`; needs ``source``).
    source:
        Sales file, Delta path or table to read instead of the database.
    se, hac_lags:
        Standard errors: ``cluster`` (the default of ``ols``, ``poisson`` and
        ``hierarchical``: leverage-corrected, clustered by 13-week blocks), ``HC1`` (the
        default of ``iv``), ``HC0``, ``HC3``, ``nonrobust`` or ``HAC`` (Newey-West, ``ols`` only,
        ``hac_lags`` weeks; default floor(4 (n/100)^(2/9))); see
        :func:`pricelab.elasticity.estimate`.
    tau:
        ``hierarchical``: between-item spread per pooling level (``level``) or one per layer
        (``common``).
    controls:
        Comma-separated controls: ``default`` (promo, Fourier pair, trend; used when None),
        ``none``, or names among ``promo, fourier, fourier2, trend`` and numeric sales
        columns (e.g. ``promo,deal``).
    fixed_effects:
        ``ols`` and ``panel``: comma-separated columns whose levels are absorbed within each
        group, e.g. ``market`` with ``by="item_id"`` (one slope per item, pooled over its
        markets with a market effect each).
    progress:
        Optional ``callback(done, total)`` for long runs (local engine).
    cross:
        ``cross`` only: ``full`` (default; every sibling's price) or ``index`` (a
        leave-one-out category price index); see :mod:`pricelab.api.cross`.
    mlflow:
        Log the stored run to MLflow (``pricelab[mlflow]``): True, a tracking URI, a
        ``{tracking_uri, experiment, strict}`` mapping or
        :class:`pricelab.tracking.MlflowSettings`; None follows ``$PRICELAB_MLFLOW``.
        The outcome is ``.mlflow`` and ``summary.mlflow`` of the run.
    output:
        Also write the elasticities table (``cross``: the matrix in long form) to this
        CSV, Parquet or JSON file (:func:`pricelab.io.write_table`) before the run is
        recorded; a stored run's file is written while DuckDB stores its results.
    """
    import json

    from pricelab.elasticity import MODELS
    from pricelab.errors import UsageError
    from pricelab.store.loaders import iso_date, load_items
    from pricelab.tracking import resolve_mlflow

    if before is not None:  # every engine and route gets an ISO date, or exit 2 here
        before = iso_date(before, "--before").isoformat()
    if output is not None:  # refused before any work (extension, folder)
        from pricelab.filecheck import check_output

        check_output(output)
    if cross is not None and model != "cross":
        raise UsageError("--cross is an option of --model cross")
    if model == "cross":
        run = _estimate_cross(db, cross=cross, by=by, before=before, engine=engine, source=source)
        _write(run.cross, output)
        return run
    if model not in MODELS:
        raise UsageError(f"unknown model '{model}'; choose one of {', '.join(MODELS)} or cross")
    track = resolve_mlflow(mlflow)
    if track is not None and source is not None and db is None:
        raise UsageError("--mlflow logs stored runs: add --db to store this estimate")
    kwargs: dict[str, Any] = {"model": model, "slope": slope}
    group_cols = [c.strip() for c in by.split(",")] if by else None
    if model == "panel":
        kwargs["pool_by"] = group_cols
    elif group_cols:
        kwargs["by"] = group_cols
    if instrument is not None:
        kwargs["instrument"] = instrument
    if se is not None:
        kwargs["se"] = se
    if hac_lags is not None:
        kwargs["hac_lags"] = hac_lags
    if tau != "level":
        kwargs["tau"] = tau
    if controls is not None:
        kwargs["controls"] = controls
    if fixed_effects is not None:
        kwargs["fixed_effects"] = [c.strip() for c in fixed_effects.split(",") if c.strip()]
    if source is not None or engine != "local":
        return _estimate_source(
            db, source, engine, kwargs, by=by, before=before, track=track, output=output
        )
    with Store.open(db, must_exist=True) as store:
        from pricelab.engines.chunked import warm
        from pricelab.store.runs import fingerprint_ahead, settled

        # taken while the fit runs (estimate writes no input); the blocks its scan reads
        # leave DuckDB's buffer pool as the streamed fits go (pricelab.store.buffers)
        inputs = fingerprint_ahead(store) if model in ("ols", "poisson", "hierarchical") else None
        warm(store, kwargs)  # numba loads while DuckDB fingerprints and scans
        with settled(inputs):  # its cursor closed before the store (also on errors)
            items = load_items(store)
            results = _fit_stored(store, kwargs, items, before, progress)
            params = {
                "model": model,
                "by": by,
                "instrument": instrument,
                "slope": slope,
                "before": before,
                "se": se,
                "hac_lags": hac_lags,
                "tau": tau,
                "controls": controls,
                "fixed_effects": fixed_effects,
                "fit": json.loads(json.dumps(results.parameters, default=str)),
            }
            return _store_estimate(store, results, items, params, track, inputs, output)


def _estimate_cross(
    db: PathLike | None,
    *,
    cross: str | None,
    by: str | None,
    before: str | None,
    engine: str,
    source: PathLike | str | None,
) -> CrossEstimateRun:
    """``--model cross``: the local engine on the database's sales (see api/cross.py)."""
    from pricelab.api.cross import estimate_cross_run
    from pricelab.errors import UsageError

    if engine != "local" or source is not None:
        raise UsageError("--model cross runs on the local engine from the database (no --source)")
    return estimate_cross_run(db, cross=cross or "full", by=by, before=before)


def _fit_stored(
    store: Store, kwargs: dict[str, Any], items: Any, before: str | None, progress: Any
) -> Any:
    """Fit the stored sales: streamed in chunks of whole groups for the per-group models
    (memory follows the chunk), else the whole sorted frame."""
    from pricelab.elasticity import estimate as _estimate
    from pricelab.engines.chunked import chunkable, estimate_chunked
    from pricelab.store.loaders import load_sales

    if chunkable(kwargs):
        results = estimate_chunked(store, kwargs, items=items, before=before, progress=progress)
        if results is not None:
            return results
    sales = load_sales(store, before=before)
    return _estimate(sales, items=items, progress=progress, **kwargs)


def _estimate_source(
    db: PathLike | None,
    source: PathLike | str | None,
    engine: str,
    kwargs: dict[str, Any],
    *,
    by: str | None,
    before: str | None,
    track: Any = None,
    output: PathLike | None = None,
) -> EstimateRun:
    """``estimate`` on sales read from ``source`` by ``engine``; stored when ``db`` is given."""
    import json

    from pricelab.engines import get_engine
    from pricelab.errors import UsageError
    from pricelab.store.loaders import load_items

    eng = get_engine(engine)
    if source is None and db is not None and Path(db).exists():
        return _estimate_db_on_engine(
            db, eng, engine, kwargs, by=by, before=before, track=track, output=output
        )
    if source is None:
        raise UsageError(
            f"--engine {engine} reads sales from --source (a Parquet file or "
            "folder, delta:PATH or a table name) or from an existing --db"
        )
    items = None
    if db is not None and Path(db).exists():
        with Store.open(db, read_only=True) as store:
            items = load_items(store)
    results = eng.estimate(str(source), items=items, before=before, **kwargs)
    if db is None:
        run = EstimateRun(None, results)
        _write(run.elasticities, output)
        return run
    params = {
        "model": kwargs["model"],
        "by": by,
        "instrument": kwargs.get("instrument"),
        "slope": kwargs["slope"],
        "before": before,
        "engine": engine,
        "source": str(source),
        "fit": json.loads(json.dumps(results.parameters, default=str)),
    }
    with Store.open(db) as store:
        return _store_estimate(store, results, items, params, track, output=output)


def _estimate_db_on_engine(
    db: PathLike,
    eng: Any,
    engine: str,
    kwargs: dict[str, Any],
    *,
    by: str | None,
    before: str | None,
    track: Any,
    output: PathLike | None = None,
) -> EstimateRun:
    """Run ``engine`` on the database's own sales (exported once to Parquet), store the run."""
    import json
    import tempfile

    from pricelab.store.loaders import load_items

    with tempfile.TemporaryDirectory(prefix="pricelab-engine-") as tmp:
        export = Path(tmp) / "sales.parquet"
        with Store.open(db, must_exist=True, read_only=True) as store:
            store.require_sales()
            items = load_items(store)
            store.execute(
                f"COPY (SELECT * FROM sales ORDER BY item_id, market, date) "
                f"TO '{export}' (FORMAT PARQUET)"
            )
        results = eng.estimate(str(export), items=items, before=before, **kwargs)
    params = {
        "model": kwargs["model"],
        "by": by,
        "instrument": kwargs.get("instrument"),
        "slope": kwargs["slope"],
        "before": before,
        "engine": engine,
        "fit": json.loads(json.dumps(results.parameters, default=str)),
    }
    with Store.open(db) as store:
        return _store_estimate(store, results, items, params, track, output=output)


def _store_estimate(
    store: Store,
    results: Any,
    items: pl.DataFrame | None,
    params: dict[str, Any],
    track: Any = None,
    inputs: Any = None,
    output: PathLike | None = None,
) -> EstimateRun:
    """Write elasticities and coefficients as an ``estimate`` run (``inputs``: its input
    fingerprint taken ahead, :func:`~pricelab.store.runs.fingerprint_ahead`).

    While DuckDB stores the two result tables (one core, compressing; it releases the
    GIL), a helper thread writes ``output`` and computes the run's summaries (its
    ``to_dict``, :meth:`~EstimateRun.distribution`, :meth:`~EstimateRun.flagged`) on the
    other; the run row is written once both are done."""
    from pricelab.store.runs import record_run
    from pricelab.tracking import log_run

    run = record_run(store, "estimate", params)
    run.inputs = inputs
    table = results.elasticities
    if (
        items is not None
        and "category" in items.columns
        and "category" not in table.columns
        and "item_id" in table.columns
    ):
        table = table.join(items.select("item_id", "category"), on="item_id", how="left")
    out = EstimateRun(run.run_id, results, table)
    with store.transaction():
        with alongside(lambda: _write(table, output), out.summarize):
            store.write_result("elasticities", table, run.run_id)
            store.write_result("elasticity_params", results.params, run.run_id)
        run.finish(out.to_dict())
    out.mlflow = log_run(store, run.run_id, table, track, table_name="elasticities")
    return out


def _write(table: pl.DataFrame, output: PathLike | None) -> None:
    if output is not None:
        from pricelab.io import write_table

        write_table(table, output)


@contextmanager
def alongside(*jobs: Callable[[], object]) -> Iterator[None]:
    """Run ``jobs`` one after another in a helper thread (in a copy of the caller's context)
    while the block runs; wait for them when it leaves (also when it raises: nothing is
    left running), then raise the block's error, else the first job's error."""
    import contextvars
    import threading

    errors: list[BaseException] = []
    # the caller's context: a file written by a job waits for the caller's commit too
    context = contextvars.copy_context()

    def work() -> None:
        try:
            for job in jobs:
                job()
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(
        target=context.run, args=(work,), name="pricelab-alongside", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if errors:
        raise errors[0]
