"""``simulate`` and ``backtest``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pricelab.store import Store

if TYPE_CHECKING:  # imported lazily: pricelab.simulate pulls scipy.stats
    import polars as pl

    from pricelab.simulate import BacktestResult, SimulationResult

PathLike = str | os.PathLike[str]

# -- what-if simulation and backtests (pricelab.simulate) -----------------------------------


def simulate(
    db: PathLike | None,
    scenario: PathLike | dict[str, Any],
    *,
    estimates: str | None = None,
    draws: int = 1000,
    seed: int = 0,
    mlflow: Any = None,
    engine: str = "local",
    source: PathLike | str | None = None,
) -> SimulationResult:
    """Project the scenarios of a scenario file against the baseline, stored as a run.

    Parameters
    ----------
    db : path or None
        The database (``$PRICELAB_DB`` / ``./pricelab.duckdb`` when None).
    scenario : path or dict
        Scenario file (YAML) or its parsed content; see :func:`pricelab.simulate.load_scenario`.
    estimates : str, optional
        Estimate run id (default: the production run, else the newest).
    draws, seed : int
        Elasticity draws for the 90% intervals and their seed.
    mlflow : optional
        Log the stored run to MLflow; see :func:`estimate`.
    engine : {"local", "spark"}
        Where the baseline window is aggregated (:mod:`pricelab.engines`): ``spark`` reads
        the sales history from ``source`` and the database then only needs the estimates.
    source : path or str, optional
        Sales history for ``spark``: Parquet file or folder, ``delta:PATH`` or a table.

    Returns
    -------
    SimulationResult
        ``.table`` (contract scenario columns per scenario × item × market),
        ``.aggregates``, ``.warnings``, ``.run_id`` (and ``.mlflow`` when logged).

    Raises
    ------
    ConfigError, UsageError, NotFoundError, EmptyStoreError, StoreError
    """
    from pricelab.tracking import log_run, resolve_mlflow

    track = resolve_mlflow(mlflow)
    with Store.open(db, must_exist=True) as store:
        from pricelab.simulate import simulate as _simulate

        # the run's input fingerprint is taken while its rows are inserted (see there)
        result = _simulate(
            store,
            scenario,
            estimates=estimates,
            draws=draws,
            seed=seed,
            engine=engine,
            source=source,
        )
        result.mlflow = log_run(  # type: ignore[attr-defined]
            store,
            result.run_id,
            result.table,
            track,
            table_name="scenarios",
        )
        return result


def simulate_table(
    db: PathLike | None,
    scenario: PathLike | dict[str, Any],
    *,
    estimates: str | None = None,
    draws: int = 1000,
    seed: int = 0,
    mlflow: Any = None,
    engine: str = "local",
    source: PathLike | str | None = None,
) -> pl.DataFrame:
    """``pricelab.simulate(db, scenario)``: :func:`simulate`'s scenario table (stored as a run).

    Same parameters as :func:`simulate`; returns its ``.table`` (polars).
    """
    return simulate(
        db,
        scenario,
        estimates=estimates,
        draws=draws,
        seed=seed,
        mlflow=mlflow,
        engine=engine,
        source=source,
    ).table


def backtest(
    db: PathLike | None = None,
    *,
    cutoff: str,
    horizon_weeks: int = 8,
    models: tuple[str, ...] | list[str] = ("poisson", "hierarchical"),
    cutoffs: int = 1,
    naive_weeks: int = 8,
    rank_by: str = "deviance",
) -> BacktestResult:
    """Fit models before ``cutoff``, predict after it, score; stored as a ``backtest`` run.

    The scores go to result table ``backtests``. See :func:`pricelab.simulate.backtest`.

    Raises
    ------
    UsageError
        Bad cutoff or model, or no history before / sales after an origin.
    EmptyStoreError, StoreError
    """
    from pricelab.simulate import backtest as _backtest
    from pricelab.store import record_run

    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        sales = store.table("sales")
        items = store.table("items") if store.count("items") else None
        result = _backtest(
            sales,
            cutoff=cutoff,
            horizon_weeks=horizon_weeks,
            models=models,
            cutoffs=cutoffs,
            items=items,
            naive_weeks=naive_weeks,
            rank_by=rank_by,
        )
        run = record_run(store, "backtest", result.parameters)
        with store.transaction():
            store.write_result("backtests", result.scores, run.run_id)
            run.finish({"best": result.best(), "scores": result.overall().to_dicts()})
        result.run_id = run.run_id
        return result
