"""Does a simulated plan state the optimizer's uplift? If not, say why.

A scenario that applies a whole stored plan (``plan_run``) is the same plan ``optimize``
scored; the two numbers agree when the simulation measures it the same way (baseline at the
current price, the plan's window, horizon, estimates and seasonality). Each difference in
set-up is named in plain words, so a reader of both outputs knows which number to quote.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from pricelab.store import Store

from .scenario import ScenarioFile

#: percentage points within which the two uplifts agree (both print with one decimal)
AGREE_PP = 0.05


def _plan_run(store: Store, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = store.execute("SELECT parameters, summary FROM runs WHERE run_id = ?", [run_id])
    if not rows:
        return {}, {}
    params, summary = (json.loads(x) if x else {} for x in rows[0])
    return params or {}, summary or {}


def _why(
    spec: ScenarioFile, params: dict[str, Any], summary: dict[str, Any], est_run: str, season: bool
) -> list[str]:
    why = []
    if spec.baseline_price != "current":
        why.append(
            f"simulate measures against the window's {spec.baseline_price} price "
            f"(baseline_price: {spec.baseline_price}), optimize against the current price "
            "(set baseline_price: current to compare like with like)"
        )
    horizon = (params.get("constraints_content") or {}).get("horizon_weeks")
    if horizon is not None and float(horizon) != float(spec.horizon_weeks):
        why.append(f"horizon {spec.horizon_weeks} weeks here, {horizon:g} in the plan")
    weeks = params.get("baseline_weeks")
    if weeks is not None and int(weeks) != int(spec.baseline_weeks):
        why.append(f"baseline window {spec.baseline_weeks} weeks here, {weeks} in the plan")
    plan_est = summary.get("estimates_run") or params.get("estimates")
    if plan_est and plan_est != est_run:
        why.append(f"elasticities from estimate run {est_run} here, {plan_est} in the plan")
    applied = (params.get("seasonality") or {}).get("applied")
    if applied is not None and bool(applied) != season:
        state = {True: "adjusted", False: "not adjusted"}
        why.append(f"seasonality {state[season]} here, {state[bool(applied)]} in the plan")
    return why


def plan_checks(
    store: Store,
    spec: ScenarioFile,
    plan_runs: dict[str, str],
    totals: pl.DataFrame,
    est_run: str,
    season_applied: bool,
) -> list[dict[str, Any]]:
    """One check per scenario that applies a whole stored plan: both uplifts and why they
    differ (``agree`` within :data:`AGREE_PP` percentage points)."""
    out = []
    by_name = {r["scenario"]: r for r in totals.iter_rows(named=True)}
    for s in spec.scenarios:
        whole = [c for c in s.changes if c.action == "plan_run" and not c.where]
        if len(s.changes) != 1 or not whole or s.name not in by_name:
            continue
        run_id = plan_runs.get(str(whole[0].value))
        if run_id is None:
            continue
        params, summary = _plan_run(store, run_id)
        stated = summary.get("uplift_pct")
        objective = summary.get("objective_name", "profit")
        here = by_name[s.name].get(f"{objective}_delta_pct")
        if stated is None or here is None:
            continue
        agree = abs(float(here) - float(stated)) <= AGREE_PP
        why = [] if agree else _why(spec, params, summary, est_run, season_applied)
        if not agree and not why:
            why = ["the same set-up: rows without an elasticity here or skipped by the plan"]
        out.append(
            {
                "scenario": s.name,
                "plan_run": run_id,
                "objective": objective,
                "optimize_pct": float(stated),
                "simulate_pct": float(here),
                "agree": agree,
                "why": why,
            }
        )
    return out


def describe(check: dict[str, Any]) -> str:
    """One line for the summary."""
    obj, run = check["objective"], check["plan_run"]
    if check["agree"]:
        return (
            f"  {check['scenario']}: {obj} {check['simulate_pct']:+.1f}%, as optimize run "
            f"{run} stated"
        )
    return (
        f"  {check['scenario']}: {obj} {check['simulate_pct']:+.1f}% here, "
        f"{check['optimize_pct']:+.1f}% stated by optimize run {run}, because "
        + "; ".join(check["why"])
    )
