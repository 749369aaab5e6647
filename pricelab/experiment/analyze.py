"""Analysis of a randomised price test: effects, elasticities, SRM, observational check."""

from __future__ import annotations

import datetime as dt
import math
from typing import cast

import numpy as np
import polars as pl
from scipy import stats

from pricelab.errors import CheckFailed, DataError, UsageError
from pricelab.experiment._panel import (
    KEYS,
    Panel,
    clean_sales,
    dense_panel,
    require_columns,
    unit_means,
)
from pricelab.experiment.design import _as_date, cell_label
from pricelab.experiment.effects import ratio_effect
from pricelab.experiment.poisson import poisson_fe
from pricelab.experiment.results import ANALYSIS_COLUMNS, ExperimentAnalysis, ExperimentDesign

SRM_THRESHOLD = 0.001


def _resolve(design_or_assignment, start, end, name):
    if isinstance(design_or_assignment, ExperimentDesign):
        d = design_or_assignment
        return d.assignment, start or d.start, end or d.end, name or d.name
    if not isinstance(design_or_assignment, pl.DataFrame):
        raise UsageError("analyze_experiment needs an ExperimentDesign or an assignment frame")
    a = design_or_assignment
    require_columns(a, [*KEYS, "price_change_pct"], "assignment")
    a = a.with_columns(
        pl.col("item_id").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("price_change_pct").cast(pl.Float64),
    )
    if "cell" not in a.columns:
        a = a.with_columns(
            pl.col("price_change_pct")
            .map_elements(cell_label, return_dtype=pl.String)
            .alias("cell")
        )
    if "unit_id" not in a.columns:
        a = a.with_columns(pl.concat_str(["item_id", "market"], separator="|").alias("unit_id"))
    return a, start, end, name or "experiment"


def _check_assignment(a: pl.DataFrame) -> None:
    if a.group_by(KEYS).len().filter(pl.col("len") > 1).height:
        raise DataError("assignment: an item x market appears more than once")
    if (
        a.group_by("unit_id")
        .agg(pl.col("price_change_pct").n_unique().alias("k"))
        .filter(pl.col("k") > 1)
        .height
    ):
        raise DataError("assignment: a randomisation unit has more than one cell")
    pcts = set(a["price_change_pct"].to_list())
    if 0.0 not in pcts:
        raise UsageError("assignment has no control cell (price_change_pct 0)")
    if len(pcts) < 2:
        raise UsageError("assignment has no treated cell")


def _by_unit(sales: pl.DataFrame, a: pl.DataFrame, ids: pl.DataFrame) -> Panel:
    """Dense (unit x week) panel summed over each randomisation unit's item x markets."""
    agg = (
        sales.join(a.select(*KEYS, "unit_id"), on=KEYS, how="inner")
        .group_by("unit_id", "date")
        .agg(
            pl.col("quantity").sum(),
            pl.col("revenue").sum(),
            pl.col("profit").sum().alias("profit"),
            pl.col("profit").null_count().alias("_np"),
        )
        .with_columns(
            pl.when(pl.col("_np") > 0).then(None).otherwise(pl.col("profit")).alias("profit"),
            pl.col("unit_id").alias("item_id"),
            pl.lit("").alias("market"),
        )
    )
    return dense_panel(agg, ids)


def _srm(units: pl.DataFrame, present: np.ndarray, threshold: float) -> dict:
    u = units.with_columns(pl.Series("present", present))
    c = (
        u.group_by("cell", "price_change_pct")
        .agg(pl.len().alias("assigned"), pl.col("present").sum().alias("observed"))
        .sort("price_change_pct")
    )
    assigned = c["assigned"].to_numpy().astype(float)
    observed = c["observed"].to_numpy().astype(float)
    expected = assigned / assigned.sum() * observed.sum()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, len(observed) - 1))
    return {
        "cells": c["cell"].to_list(),
        "assigned": assigned.astype(int).tolist(),
        "observed": observed.astype(int).tolist(),
        "expected": expected.tolist(),
        "chi2": chi2,
        "p_value": p,
        "threshold": threshold,
        "mismatch": p < threshold,
    }


def _elasticity(pre_q, test_q, log_ratio, alpha, label, notes):
    """Poisson FE elasticity on pre + test weeks; returns (est, se, low, high)."""
    y = np.hstack([pre_q, test_q])
    x = np.hstack([np.zeros_like(pre_q), np.repeat(log_ratio[:, None], test_q.shape[1], axis=1)])
    try:
        fit = poisson_fe(y, x)
    except CheckFailed as exc:
        notes.append(f"elasticity for {label} not estimated: {exc}")
        return (math.nan,) * 4
    b, se = float(fit.coef[0]), float(fit.std_error[0])
    z = stats.norm.ppf(1 - alpha / 2)
    return b, se, b - z * se, b + z * se


def _comparison(a: pl.DataFrame, obs: pl.DataFrame, intervals: dict) -> pl.DataFrame:
    require_columns(obs, [*KEYS, "elasticity"], "observational")
    cols = [c for c in ("ci_low", "ci_high") if c in obs.columns]
    o = obs.select(
        pl.col("item_id").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("elasticity").cast(pl.Float64).alias("obs"),
        *[pl.col(c).cast(pl.Float64) for c in cols],
    )
    j = a.select(*KEYS, "cell", "price_change_pct").join(o, on=KEYS, how="inner")
    j = j.filter(pl.col("obs").is_not_null() & pl.col("obs").is_finite())
    rows = []
    for cell, (pct, lo, hi, est) in intervals.items():
        sub = j if cell == "pooled" else j.filter(pl.col("cell") == cell)
        v = sub["obs"].to_numpy()
        overlap = None
        if len(cols) == 2 and sub.height:
            ov = (sub["ci_low"].to_numpy() <= hi) & (sub["ci_high"].to_numpy() >= lo)
            overlap = float(ov.mean())
        mean = float(v.mean()) if len(v) else None
        rows.append(
            {
                "cell": cell,
                "price_change_pct": pct,
                "n_units": len(v),
                "experiment_elasticity": est,
                "experiment_low": lo,
                "experiment_high": hi,
                "observational_mean": mean,
                "share_units_inside": float(((v >= lo) & (v <= hi)).mean()) if len(v) else None,
                "share_intervals_overlap": overlap,
                "mean_inside": None if mean is None else bool(lo <= mean <= hi),
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "price_change_pct": pl.Float64,
            "observational_mean": pl.Float64,
            "share_units_inside": pl.Float64,
            "share_intervals_overlap": pl.Float64,
            "mean_inside": pl.Boolean,
        },
    )


def analyze_experiment(
    design_or_assignment,
    test_sales: pl.DataFrame,
    pre_sales: pl.DataFrame,
    *,
    observational: pl.DataFrame | None = None,
    alpha: float = 0.05,
    cuped: bool = True,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    name: str | None = None,
    srm_threshold: float = SRM_THRESHOLD,
    pre_weeks: int | None = None,
) -> ExperimentAnalysis:
    """Estimate the effects and elasticities of a randomised price test.

    Parameters
    ----------
    design_or_assignment : ExperimentDesign or polars.DataFrame
        The design, or its assignment (``item_id, market, price_change_pct``,
        optional ``cell`` and ``unit_id``; without ``unit_id`` each item x market
        is its own randomisation unit).
    test_sales, pre_sales : polars.DataFrame
        Weekly sales (``item_id, market, date, price, quantity``, optional
        ``unit_cost``). Only test rows inside the window and pre rows before its
        start are used; a unit x week without a row counts as zero sales.
    observational : polars.DataFrame, optional
        ``item_id, market, elasticity`` (and ``ci_low, ci_high``) from a model,
        compared with the experiment's intervals.
    alpha : float
        Two-sided level of the intervals (0.05 gives 95%).
    cuped : bool
        Adjust the effects with the pre-period outcome of each unit.
    start, end : date or ISO string, optional
        Test window; taken from the design, else from the test sales' dates.
    name : str, optional
        Experiment name for the summary.
    srm_threshold : float
        p-value below which the sample ratio is flagged as a mismatch.
    pre_weeks : int, optional
        Use only the last ``pre_weeks`` weeks before the start as the
        pre-period (as in the design); default all pre-period rows.

    Returns
    -------
    ExperimentAnalysis

    Raises
    ------
    CheckFailed
        No sales for the experiment's units in the test window (names the dates).
    DataError
        No pre-period sales, or an inconsistent assignment.
    UsageError
        No control or treated cell, bad alpha or input type.
    """
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    a, start, end, name = _resolve(design_or_assignment, start, end, name)
    _check_assignment(a)
    test = clean_sales(test_sales, "test sales")
    if start is None or end is None:
        in_a = test.join(a.select(KEYS), on=KEYS, how="semi")
        if in_a.height == 0:
            raise CheckFailed(
                "no sales for the experiment's units in the test sales (and no test window given)"
            )
        start = start or cast(dt.date, in_a["date"].min())
        end = end or cast(dt.date, in_a["date"].max())
    start = _as_date(start) if isinstance(start, str) else start
    end = dt.date.fromisoformat(end) if isinstance(end, str) else end
    assert isinstance(start, dt.date) and isinstance(end, dt.date)
    test = test.filter(pl.col("date").is_between(start, end)).join(
        a.select(KEYS), on=KEYS, how="semi"
    )
    if test.height == 0:
        raise CheckFailed(
            f"no sales for the experiment's units in the test window "
            f"{start.isoformat()} to {end.isoformat()}"
        )
    pre = clean_sales(pre_sales, "pre-period sales").filter(pl.col("date") < start)
    if pre_weeks is not None:
        if isinstance(pre_weeks, bool) or not isinstance(pre_weeks, int) or pre_weeks < 1:
            raise UsageError(f"pre_weeks must be a whole number >= 1, got {pre_weeks!r}")
        pre = pre.filter(pl.col("date") >= start - dt.timedelta(weeks=pre_weeks))
    pre = pre.join(a.select(KEYS), on=KEYS, how="semi")
    if pre.select(pl.col("date").n_unique()).item() < 1:
        raise DataError(
            f"no pre-period sales for the experiment's units before "
            f"{start.isoformat()}; CUPED and the elasticity need them"
        )
    units = (
        a.group_by("unit_id")
        .agg(pl.col("cell").first(), pl.col("price_change_pct").first())
        .sort("unit_id")
    )
    ids = units.select(pl.col("unit_id").alias("item_id"), pl.lit("").alias("market"))
    tp, pp = _by_unit(test, a, ids), _by_unit(pre, a, ids)
    ym, xm = unit_means(tp), unit_means(pp)
    notes = []
    if tp.profit is None or pp.profit is None:
        notes.append("no unit_cost in the sales: profit effects are not estimated")
    pct = units["price_change_pct"].to_numpy()
    log_ratio = np.log1p(pct / 100)
    ctrl = pct == 0
    z = stats.norm.ppf(1 - alpha / 2)
    rows, intervals = [], {}
    for p in sorted(set(pct.tolist()) - {0.0}):
        sel = ctrl | (pct == p)
        tr = (pct == p)[sel]
        row = {
            "cell": cell_label(p),
            "price_change_pct": p,
            "n_units": int(tr.sum()),
            "n_control": int((~tr).sum()),
        }
        for metric, prefix in (
            ("quantity", "effect"),
            ("revenue", "revenue_effect"),
            ("profit", "profit_effect"),
        ):
            y_all, x_all = ym[metric], xm[metric]
            if y_all is None or x_all is None:
                r = None
            else:
                r = ratio_effect(y_all[sel], tr, x_all[sel] if cuped else None)
            est, se = (r.effect, r.std_error) if r else (math.nan, math.nan)
            row[f"{prefix}_pct"] = 100 * est
            row[f"{prefix}_low"] = 100 * (est - z * se)
            row[f"{prefix}_high"] = 100 * (est + z * se)
            row[f"{prefix}_se"] = 100 * se
            if metric == "quantity":
                row["p_value"] = r.p_value if r else math.nan
        b, se, lo, hi = _elasticity(
            pp.quantity[sel], tp.quantity[sel], log_ratio[sel], alpha, row["cell"], notes
        )
        row.update(elasticity=b, elasticity_low=lo, elasticity_high=hi, elasticity_se=se)
        intervals[row["cell"]] = (p, lo, hi, b)
        rows.append(row)
    b, se, lo, hi = _elasticity(pp.quantity, tp.quantity, log_ratio, alpha, "pooled", notes)
    pooled = {
        "elasticity": b,
        "elasticity_se": se,
        "elasticity_low": lo,
        "elasticity_high": hi,
        "n_units": int(len(pct)),
    }
    intervals["pooled"] = (None, lo, hi, b)
    first = list(ANALYSIS_COLUMNS)
    table = pl.DataFrame(rows).with_columns(pl.col(pl.Float64).fill_nan(None))
    table = table.select(first + [c for c in table.columns if c not in first])
    comparison = None if observational is None else _comparison(a, observational, intervals)
    return ExperimentAnalysis(
        name=name,
        start=start,
        end=end,
        test_weeks=len(tp.weeks),
        pre_weeks=len(pp.weeks),
        alpha=alpha,
        cuped=cuped,
        table=table,
        pooled=pooled,
        srm=_srm(units, tp.present, srm_threshold),
        comparison=comparison,
        notes=notes,
    )
