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
gate-backtest
    ``passed`` (1/0), ``origins`` and per gate check ``<check>/candidate``,
    ``<check>/reference``, ``<check>/limit``, ``<check>/passed`` (``wape``, ``flags``...).
promote
    ``promoted`` and ``forced`` (1/0) and the same per-check metrics (the ``rollback`` check
    too while a forced production run is pinned).
monitor
    ``ok`` (1/0), ``alerts`` and per check ``<name>/alert`` (1/0), ``<name>/value``,
    ``<name>/threshold``.
pipeline
    ``exit_code``, ``changed`` (1/0) and per step ``<step>/new_run`` (1/0).
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


def _checks(checks: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for c in checks:
        name = _BAD.sub("_", str(c.get("check")))
        for k in ("candidate", "reference", "limit"):
            out[f"{name}/{k}"] = _num(c.get(k))
        if "passed" in c:
            out[f"{name}/passed"] = float(bool(c["passed"]))
    return out


def gate_metrics(command: str, summary: dict[str, Any]) -> dict[str, float]:
    """Metrics of a gate-backtest or promote run (see the module docstring)."""
    comp = summary if command == "gate-backtest" else summary.get("comparison") or {}
    checks = list(comp.get("checks") or [])
    out = _checks(checks + ([summary["rollback"]] if summary.get("rollback") else []))
    if command == "gate-backtest":
        out["passed"] = float(bool(summary.get("passed")))
        out["origins"] = float(len(summary.get("origins") or []))
    else:
        out["promoted"] = float(summary.get("status") == "promoted")
        out["forced"] = float(bool(summary.get("forced")))
    return {k: v for k, v in out.items() if v is not None}


def monitor_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Metrics of a monitor run (see the module docstring)."""
    alerts = summary.get("alerts") or []
    out: dict[str, float | None] = {"ok": float(not alerts), "alerts": float(len(alerts))}
    for c in summary.get("checks") or []:
        name = _BAD.sub("_", str(c.get("name")))
        out[f"{name}/alert"] = float(c.get("status") == "alert")
        out[f"{name}/value"] = _num(c.get("value"))
        out[f"{name}/threshold"] = _num(c.get("threshold"))
    return {k: v for k, v in out.items() if v is not None}


def pipeline_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Metrics of a pipeline run (see the module docstring)."""
    out = {"exit_code": float(summary.get("exit_code") or 0)}
    out["changed"] = float(bool(summary.get("changed")))
    for s in summary.get("steps") or []:
        out[f"{s['step']}/new_run"] = float(bool(s.get("new_run")))
    return out


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
    elif command in ("gate-backtest", "promote"):
        out = gate_metrics(command, summary)
    elif command == "monitor":
        out = monitor_metrics(summary)
    elif command == "pipeline":
        out = pipeline_metrics(summary)
    else:
        out = {}
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isinf(v))}
