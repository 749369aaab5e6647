"""``experiment design`` and ``experiment analyze``."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from pricelab.store import Store

PathLike = str | os.PathLike[str]


# -- experiments --------------------------------------------------------------------------
def _parse_where(where: list[str] | None) -> dict[str, list[str]]:
    from pricelab.errors import UsageError

    out: dict[str, list[str]] = {}
    for w in where or []:
        if "=" not in w:
            raise UsageError(f"--where {w!r}: expected COLUMN=VALUE[,VALUE...]")
        col, vals = w.split("=", 1)
        out.setdefault(col.strip(), []).extend(v.strip() for v in vals.split(",") if v.strip())
    return out


def _units(store: Store, where: dict[str, list[str]]) -> pl.DataFrame:
    """Item × market units with current price, market and item attributes."""
    from pricelab.errors import UsageError
    from pricelab.store.loaders import load_items

    units = store.query(
        "SELECT item_id, market, arg_max(price, date) AS current_price FROM sales "
        "GROUP BY item_id, market ORDER BY item_id, market"
    )
    items = load_items(store)
    if items is not None:
        units = units.join(items, on="item_id", how="left")
    if store.count("markets") and "currency" not in units.columns:  # balance per currency
        ccy = store.query("SELECT market, coalesce(currency, market) AS currency FROM markets")
        units = units.join(ccy, on="market", how="left").with_columns(
            pl.col("currency").fill_null(pl.col("market"))
        )
    for col, vals in where.items():
        if col not in units.columns:
            raise UsageError(
                f"unknown --where column '{col}'; use one of {', '.join(units.columns)}"
            )
        units = units.filter(pl.col(col).cast(pl.String).is_in(vals))
    if units.height == 0:
        raise UsageError(
            "--where matches no item x market: "
            + ", ".join(f"{k}={','.join(v)}" for k, v in where.items())
        )
    return units


def experiment_design(
    db: PathLike | None = None,
    *,
    name: str,
    cells: list[float],
    weeks: int,
    seed: int,
    unit: str = "item-market",
    stratify: list[str] | None = None,
    where: list[str] | None = None,
    start: str | None = None,
    mde: float | None = None,
) -> tuple[Any, str]:
    """Design a randomised price test on the loaded items and store it under ``name``.

    Returns the :class:`~pricelab.experiment.ExperimentDesign` and its run id.
    """
    from pricelab.errors import UsageError
    from pricelab.experiment import design_experiment
    from pricelab.store.experiments import experiment_exists, save_design
    from pricelab.store.loaders import load_sales
    from pricelab.store.runs import record_run

    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        if experiment_exists(store, name):
            raise UsageError(f"experiment '{name}' already exists; choose another --name")
        units = _units(store, _parse_where(where))
        history = load_sales(store)
        design = design_experiment(
            units,
            history,
            name=name,
            cells=cells,
            unit=unit,
            stratify=stratify,
            weeks=weeks,
            seed=seed,
            start=start,
            mde=mde,
        )
        params = {
            "name": name,
            "cells": cells,
            "weeks": weeks,
            "seed": seed,
            "unit": unit,
            "stratify": stratify,
            "where": where,
            "start": start,
            "mde": mde,
        }
        run = record_run(store, "experiment-design", params)
        with store.transaction():
            save_design(store, design, run.run_id)
            run.finish(
                {
                    "name": name,
                    "cell_counts": design.cell_counts,
                    "start": str(design.start),
                    "end": str(design.end),
                }
            )
        return design, run.run_id


def experiment_analyze(
    db: PathLike | None = None, *, name: str, estimates: str | None = None
) -> tuple[Any, str]:
    """Analyse stored experiment ``name`` with the sales of its test window.

    Returns the :class:`~pricelab.experiment.ExperimentAnalysis` and its run id.
    """
    from pricelab.demand.from_store import resolve_estimates
    from pricelab.experiment import analyze_experiment
    from pricelab.store.experiments import load_design
    from pricelab.store.loaders import load_sales
    from pricelab.store.runs import latest_run, record_run

    with Store.open(db, must_exist=True) as store:
        header, assignment = load_design(store, name)
        sales = load_sales(store)
        start, end = header["start"], header["end"]
        test = sales.filter((pl.col("date") >= start) & (pl.col("date") < end))
        pre = sales.filter(pl.col("date") < start)
        observational = None
        est_run = None
        if estimates is not None or latest_run(store, "estimate") is not None:
            est_run = resolve_estimates(store, estimates)
            observational = store.read_result("elasticities", est_run)
        analysis = analyze_experiment(
            assignment, test, pre, observational=observational, start=start, end=end, name=name
        )
        parents = [header["run_id"], *([est_run] if est_run else [])]
        run = record_run(
            store, "experiment-analyze", {"name": name, "estimates": est_run}, parents=parents
        )
        with store.transaction():
            store.write_result(
                "experiment_results",
                analysis.table.with_columns(pl.lit(name).alias("experiment")),
                run.run_id,
            )
            run.finish({"name": name, "pooled": analysis.pooled, "srm": analysis.srm})
        return analysis, run.run_id
