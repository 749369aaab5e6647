"""The baseline window of a simulation: from the database's sales, or aggregated by an engine.

Locally the window is one DuckDB query over the store's ``sales``. With ``engine="spark"``
and a ``source`` (a Parquet/Delta history or a table too large for one machine) the Spark
engine aggregates the window (:func:`pricelab.engines.history.baseline_spark`) and the
small per item × market frame joins items, markets, costs and the estimates in the store
exactly as the local baseline does; the projection and draws are the same code.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import polars as pl

from pricelab.demand.baseline import baseline, window_dates
from pricelab.demand.curves import ConstantElasticity
from pricelab.demand.season import SeasonalAdjustment, seasonal_adjustment, seasonal_terms
from pricelab.errors import EmptyStoreError, UsageError
from pricelab.store import Store

from .scenario import ScenarioFile


def baseline_window(
    store: Store,
    spec: ScenarioFile,
    est_run: str,
    *,
    engine: str = "local",
    source: Any = None,
    spark: Any = None,
    tables: Collection[str] | None = None,
    dates: Sequence[Any] | None = None,
) -> tuple[pl.DataFrame, SeasonalAdjustment, dict[str, str]]:
    """Baseline rows, their seasonal adjustment and the window's dates.

    Parameters
    ----------
    store : Store
        The database holding the estimates (and, locally, the sales).
    spec : ScenarioFile
        The scenario file (``baseline_weeks, horizon_weeks, baseline_price, seasonality``).
    est_run : str
        The estimate run.
    engine : {"local", "spark"}
        Where the window is aggregated (chosen by :func:`pricelab.engines.get_engine`).
    source : path or table name, optional
        The sales history the engine reads (needed by ``spark``).
    spark : SparkSession, optional
        Session for the ``spark`` engine.
    tables : collection of str, optional
        The store's table names when the caller has them already.
    dates : (after, through), optional
        The local window's dates (:func:`pricelab.demand.baseline.window_dates`) when the
        caller has them already.

    Returns
    -------
    (polars.DataFrame, SeasonalAdjustment, dict)
        The baseline as :func:`pricelab.simulate.baseline` returns it, the adjustment, and
        ``{"after", "through"}`` (ISO dates).

    Raises
    ------
    EmptyStoreError
        No sales (in the window).
    UsageError
        ``source`` with the local engine, or the spark engine without ``source``.
    """
    weeks, mode = spec.baseline_weeks, spec.baseline_price
    tables = set(store.table_names() if tables is None else tables)
    if engine == "local" and source is None:
        base = baseline(store, weeks, estimates_run=est_run, mode=mode, tables=tables)
        _require_rows(base, store.path)
        season = _season(store, base, spec, est_run, tables)
        after, through = window_dates(store, weeks) if dates is None else dates
        return base, season, {"after": str(after), "through": str(through)}
    from pricelab.engines import get_engine

    eng = get_engine(engine, spark=spark) if spark is not None else get_engine(engine)
    if source is None:
        raise UsageError(
            f"--engine {engine} reads the sales history from --source (a Parquet "
            "file or folder, delta:PATH or a table name)"
        )
    elast = None
    if mode == "current":
        elast = store.query(
            "SELECT item_id, market, elasticity FROM elasticities WHERE run_id = ?", [est_run]
        )
    seasonal = spec.seasonality != "off" and bool(seasonal_terms(store, est_run)[0])
    hist = eng.baseline(
        source,
        weeks,
        mode=mode,
        elasticities=elast,
        window_rows=seasonal,
        curve=ConstantElasticity,
    )
    base = baseline(
        store, weeks, estimates_run=est_run, mode=mode, aggregated=hist.frame, tables=tables
    )
    _require_rows(base, source)
    season = seasonal_adjustment(
        store,
        base,
        weeks=weeks,
        horizon=spec.horizon_weeks,
        estimates_run=est_run,
        mode=spec.seasonality,
        window=hist.rows,
    )
    return base, season, {"after": str(hist.after), "through": str(hist.through)}


def _season(
    store: Store, base: pl.DataFrame, spec: ScenarioFile, est_run: str, tables: Collection[str]
) -> SeasonalAdjustment:
    """The local seasonal adjustment; none (all 1.0) without stored Fourier coefficients."""
    if "elasticity_params" not in tables:  # what seasonal_terms finds: no terms
        return SeasonalAdjustment(np.ones(base.height), False)
    return seasonal_adjustment(
        store,
        base,
        weeks=spec.baseline_weeks,
        horizon=spec.horizon_weeks,
        estimates_run=est_run,
        mode=spec.seasonality,
    )


def _require_rows(base: pl.DataFrame, where: Any) -> None:
    if base.height == 0:
        raise EmptyStoreError(f"{where}: no sales in the baseline window")
