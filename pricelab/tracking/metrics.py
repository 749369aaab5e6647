"""The MLflow metrics of each command, taken from the stored run and its result table.

estimate
    ``groups``, ``estimated``, ``median_elasticity`` (from the run summary),
    ``share_flagged`` (groups with a flag in
    :data:`pricelab.elasticity.results.GATE_FLAGS` — positive, no_price_variation or
    weak_instrument: the promotion gate's definition, :func:`pricelab.registry.flagged_share`;
    ``pricelab estimate``'s own ``share_flagged`` counts the wider ``DISPLAY_FLAGS``) and
    ``median_std_error`` (over groups with an estimate and a finite standard error).
optimize
    ``objective``, ``baseline_objective``, ``uplift_pct``, ``gap``, ``rows`` and
    ``skipped_rows`` (from the plan summary).
simulate
    ``scenarios``, ``rows`` and per scenario ``<name>/profit_delta``,
    ``<name>/profit_delta_pct``, ``<name>/revenue_delta``, ``<name>/revenue_delta_pct``,
    ``<name>/quantity_delta_pct`` (overall totals, base currency, over the horizon).
"""

from __future__ import annotations

import math
import re
from typing import Any

import polars as pl

_BAD = re.compile(r"[^\w\-. /]")


def _num(value: Any) -> float | None:
    """A finite-or-NaN float, or None for missing values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def estimate_metrics(summary: dict[str, Any], table: pl.DataFrame | None) -> dict[str, float]:
    """Metrics of an estimate run (see the module docstring)."""
    from pricelab.registry import flagged_share

    out = {k: _num(summary.get(k)) for k in ("groups", "estimated", "median_elasticity")}
    if table is not None and table.height:
        out["share_flagged"] = flagged_share(table)
        se = table.filter(
            pl.col("elasticity").is_not_nan()
            & pl.col("std_error").is_not_null()
            & pl.col("std_error").is_finite()
        )["std_error"]
        out["median_std_error"] = float(se.median()) if se.len() else None  # type: ignore[arg-type]
    return {k: v for k, v in out.items() if v is not None}


def optimize_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Metrics of an optimize run (see the module docstring)."""
    out = {
        k: _num(summary.get(k))
        for k in ("objective", "baseline_objective", "uplift_pct", "gap", "rows")
    }
    out["skipped_rows"] = float(len(summary.get("skipped") or []))
    return {k: v for k, v in out.items() if v is not None}


def simulate_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Metrics of a simulate run (see the module docstring)."""
    totals = summary.get("totals") or []
    out: dict[str, float | None] = {
        "scenarios": float(len(totals)),
        "rows": _num(summary.get("rows")),
    }
    for t in totals:
        name = _BAD.sub("_", str(t.get("scenario")))
        for k in ("profit", "revenue"):
            new, old = _num(t.get(f"scenario_{k}")), _num(t.get(f"baseline_{k}"))
            out[f"{name}/{k}_delta"] = new - old if new is not None and old is not None else None
            out[f"{name}/{k}_delta_pct"] = _num(t.get(f"{k}_delta_pct"))
        out[f"{name}/quantity_delta_pct"] = _num(t.get("quantity_delta_pct"))
    return {k: v for k, v in out.items() if v is not None}


def run_metrics(rec: dict[str, Any], table: pl.DataFrame | None) -> dict[str, float]:
    """Metrics for stored run ``rec`` (a :func:`pricelab.store.get_run` record).

    Values are floats; missing and infinite values are left out, NaN stays NaN (MLflow
    stores it).
    """
    summary = rec.get("summary") or {}
    command = rec.get("command")
    if command == "estimate":
        out = estimate_metrics(summary, table)
    elif command == "optimize":
        out = optimize_metrics(summary)
    elif command == "simulate":
        out = simulate_metrics(summary)
    else:
        out = {}
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isinf(v))}
