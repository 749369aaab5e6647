"""Production: the promotion gate, the registry and the nightly pipeline."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from pricelab.store import Store

PathLike = str | os.PathLike[str]


# -- model registry: promotion gate and history (pricelab.registry) -----------------------
def promote(
    db: PathLike | None,
    run_id: str,
    *,
    force: bool = False,
    reason: str | None = None,
    min_improvement_wape: float = 1.0,
    tolerance_flags: float = 5.0,
    refresh: bool = True,
    horizon_weeks: int = 4,
    cutoffs: int = 3,
    naive_weeks: int = 8,
) -> Any:
    """Promote estimate run ``run_id`` to production if it passes the gate.

    The gate backtests the candidate against the production run on the last
    ``cutoffs * horizon_weeks`` weeks (both refitted with their stored parameters before each
    origin) and passes when the candidate's WAPE is at least ``min_improvement_wape`` percent
    lower (relative; a tie keeps production) and its share of flagged groups at most
    ``tolerance_flags`` points higher; the first promotion must beat the naive forecast. A
    candidate with production's settings on newer inputs is a refresh and passes the WAPE
    check while ``refresh`` is on. When production was forced (a rollback), only a candidate
    estimated afterwards on changed inputs can replace it. See :mod:`pricelab.registry.gate`.

    Parameters
    ----------
    run_id : str
        An estimate run id, or ``latest``.
    force, reason : bool, str
        Promote whatever the gate says; ``reason`` is then required and recorded.

    Returns
    -------
    pricelab.registry.Promotion
        ``status`` is ``promoted``, ``refused`` (``ok`` False: the CLI exits 1) or
        ``already-production``.

    Raises
    ------
    NotFoundError, UsageError, EmptyStoreError, StoreError
    """
    from pricelab.registry import GateConfig
    from pricelab.registry import promote as _promote

    config = GateConfig(
        min_improvement_wape=min_improvement_wape,
        tolerance_flags=tolerance_flags,
        refresh=refresh,
        horizon_weeks=horizon_weeks,
        cutoffs=cutoffs,
        naive_weeks=naive_weeks,
    )
    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        return _promote(store, run_id, config=config, force=force, reason=reason)


def registry(db: PathLike | None = None) -> pl.DataFrame:
    """Every promotion, newest first: ``run_id, stage, promoted_at, promoted_by, reason,
    previous_run_id, forced, model`` (the first row is the production run)."""
    from pricelab.registry import history

    with Store.open(db, must_exist=True, read_only=True) as store:
        return history(store)


def pipeline(
    db: PathLike | None = None,
    *,
    config: PathLike | dict[str, Any] | None = None,
    engine: str | None = None,
) -> Any:
    """Run the nightly pipeline: ingest new files, validate, estimate, backtest, promote if
    better, optimize, monitor — each step a run, skipped when its inputs did not change.

    Parameters
    ----------
    db : path, optional
        The database (default: the config's ``db``, else ``$PRICELAB_DB`` /
        ``./pricelab.duckdb``).
    config : path or dict, optional
        Pipeline YAML (see ``examples/pipeline.yaml``); None runs on the bundled sample.
    engine : {"local", "spark"}, optional
        Overrides the config's ``estimate.engine`` (Spark runs the estimators on a local or
        cluster Spark session: ``pricelab[spark]``).

    Returns
    -------
    pricelab.pipeline.PipelineResult
        ``steps`` (name, status, run id, message), ``exit_code``, ``changed``, ``run_id``.
        A failing step does not raise: it stops the pipeline and sets ``exit_code``.

    Raises
    ------
    ConfigError, InputFileError
        The config file is unreadable or invalid (nothing has run).
    """
    from pricelab.pipeline import run_pipeline

    return run_pipeline(db, config, engine=engine)
