"""``optimize``: a price plan stored as a run."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from pricelab.store import Store

PathLike = str | os.PathLike[str]


# -- optimization -------------------------------------------------------------------------
class OptimizeRun:
    """A plan, the estimate run it used and the run it is stored as (None without a db)."""

    def __init__(self, plan: Any, run_id: str | None, estimates: str | None) -> None:
        self.plan = plan
        self.run_id = run_id
        self.estimates = estimates
        self.mlflow: Any = None  # TrackingOutcome when logged to MLflow

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the plan's own summary plus lineage)."""
        return {"run_id": self.run_id, "estimates_run": self.estimates, **self.plan.to_dict()}


def _constraints_content(constraints: PathLike | dict[str, Any] | None) -> Any:
    """What the constraints said, for lineage (the file may change later)."""
    import json

    from pricelab import yamlsafe

    if constraints is None:
        return None
    if isinstance(constraints, dict):
        return json.loads(json.dumps(constraints, default=str))
    from pricelab.io import read_text

    text = read_text(constraints, what="constraints file", max_bytes=yamlsafe.MAX_BYTES)
    return json.loads(json.dumps(yamlsafe.safe_load(text, str(constraints)), default=str))


def _file_name(path: PathLike) -> str:
    """``path`` as given for a local file; a URL without its query string or secrets."""
    from pricelab.urls import display, is_url

    return display(path) if is_url(path) else str(path)


def _seasonal_demand(
    store: Store, table: pl.DataFrame, est_run: str, cons: Any, baseline_weeks: int, mode: str
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Scale base units to the plan horizon's season (shared with simulate)."""
    import math

    from pricelab.demand.season import MODES, seasonal_adjustment
    from pricelab.errors import UsageError

    if mode not in MODES:
        raise UsageError(f"--seasonality must be one of {', '.join(MODES)}, got {mode!r}")
    horizon = math.ceil(cons.horizon_weeks) if cons is not None else 1
    adj = seasonal_adjustment(
        store, table, weeks=baseline_weeks, horizon=horizon, estimates_run=est_run, mode=mode
    )
    table = table.with_columns(pl.col("base_quantity") * pl.Series(adj.factor))
    return table, adj.to_dict()


def _db_given(db: PathLike | None) -> bool:
    return db is not None or bool(os.environ.get("PRICELAB_DB"))


def optimize(
    db: PathLike | None = None,
    *,
    demand: PathLike | None = None,
    constraints: PathLike | dict[str, Any] | None = None,
    estimates: str | None = None,
    baseline_weeks: int = 8,
    draws: int | None = None,
    risk: str | None = None,
    seed: int = 0,
    strict: bool = False,
    mlflow: Any = None,
    seasonality: str = "auto",
    cross: PathLike | None = None,
    conflicts: str = "raise",
    expected: bool = False,
) -> OptimizeRun:
    """Recommend a price per item × market and store the plan as an ``optimize`` run.

    Parameters
    ----------
    db:
        The database (demand built from its estimates, sales, costs, markets, inventory).
    demand:
        A demand-table file instead of the database; the plan is then stored only when a
        database is named explicitly (``db`` or ``$PRICELAB_DB``).
    constraints:
        Constraints YAML path or URL (contract schema) or an equivalent dict.
    estimates:
        Estimate run id (default: the production run if one is promoted, else the latest).
    baseline_weeks:
        Weeks of history that define current base units.
    draws, risk, seed:
        Elasticity draws for profit intervals; ``cvar:ALPHA`` risk constraint; seed.
    expected:
        Plan on the expected profit over the elasticity draws (``draws``, default 200)
        instead of on the point estimates (:func:`pricelab.optimize.optimize`).
    strict:
        Fail (exit 2) on rows that would otherwise be skipped with a flag.
    mlflow:
        Log the stored plan to MLflow; see :func:`estimate`.
    cross:
        File mode: cross-price elasticities ``item_id, market, other_item_id, elasticity``
        for the demand table (joint category pricing, :mod:`pricelab.optimize.cross`). In
        database mode the estimate run's own cross table is used when it has one
        (``estimate --model cross``).
    conflicts:
        ``keep``: rows whose own constraints conflict stay at their current price, marked
        ``conflict`` in the plan's ``status`` and ``reason`` columns (a partial plan, stored);
        ``raise`` (default): InfeasibleError. See :mod:`pricelab.optimize.conflicts`.
    """
    from pricelab.demand.from_store import demand_from_store
    from pricelab.errors import UsageError
    from pricelab.io import read_table
    from pricelab.optimize import load_constraints
    from pricelab.optimize import optimize as _optimize
    from pricelab.store.runs import record_run
    from pricelab.tracking import log_run, resolve_mlflow

    track = resolve_mlflow(mlflow)
    if track is not None and demand is not None and not _db_given(db):
        raise UsageError("--mlflow logs stored runs: add --db to store this plan")
    cons = load_constraints(constraints) if constraints is not None else None
    params: dict[str, Any] = {
        "constraints": _file_name(constraints)
        if constraints is not None and not isinstance(constraints, dict)
        else constraints,
        "constraints_content": _constraints_content(constraints),
        "demand": _file_name(demand) if demand is not None else None,
        "estimates": estimates,
        "baseline_weeks": baseline_weeks,
        "draws": draws,
        "risk": risk,
        "expected": expected,
        "seed": seed,
        "strict": strict,
        "conflicts": conflicts,
    }
    if cross is not None and demand is None:
        raise UsageError(
            "--cross goes with --demand (in database mode a cross estimate run is used)"
        )
    opts: dict[str, Any] = {
        "draws": draws,
        "risk": risk,
        "expected": expected,
        "seed": seed,
        "strict": strict,
        "conflicts": conflicts,
    }
    if demand is not None:
        table = read_table(demand)
        if cross is not None:
            params["cross"] = _file_name(cross)
        ctab = read_table(cross) if cross is not None else None
        plan = _optimize(table, cons, cross=ctab, **opts)  # the cross route when ctab is given
        if not _db_given(db):
            return OptimizeRun(plan, None, None)
        with Store.open(db) as store:
            run = record_run(store, "optimize", params)
            with store.transaction():
                store.write_result("plans", plan.table, run.run_id)
                out = OptimizeRun(plan, run.run_id, None)
                run.finish(out.to_dict())
            out.mlflow = log_run(store, run.run_id, plan.table, track, table_name="plans")
            return out
    with Store.open(db, must_exist=True) as store:
        table, est_run = demand_from_store(
            store, estimates=estimates, baseline_weeks=baseline_weeks
        )
        table, season = _seasonal_demand(store, table, est_run, cons, baseline_weeks, seasonality)
        from pricelab.api.cross import cross_table

        ctab = cross_table(store, est_run)
        if ctab is not None:
            params["cross"] = f"estimate run {est_run}"
        plan = _optimize(table, cons, cross=ctab, **opts)
        params["estimates"] = est_run
        params["seasonality"] = season
        run = record_run(store, "optimize", params, parents=[est_run])
        with store.transaction():
            store.write_result("plans", plan.table, run.run_id)  # skipped rows included
            out = OptimizeRun(plan, run.run_id, est_run)
            run.finish(out.to_dict())
        out.mlflow = log_run(store, run.run_id, plan.table, track, table_name="plans")
        return out
