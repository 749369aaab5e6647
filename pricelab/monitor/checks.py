"""Monitoring checks: each reads the store and returns ``ok``, ``alert`` or ``skipped``.

A check whose inputs are absent (no sales, fewer than two estimate runs, no plan) is
``skipped``, never an alert.

``drift``, ``fit`` and ``plan`` judge the estimates in production (the registry), never an
ad-hoc ``pricelab estimate`` or a candidate the gate refused: those stay visible in
``pricelab runs list`` but cannot raise an alert. Only a database in which nothing was ever
promoted falls back to the newest estimate runs.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import polars as pl

from pricelab.monitor.production import (
    drift_pair,
    latest_runs,
    production_plan,
    production_rows,
    serving_estimate,
)
from pricelab.store.db import Store
from pricelab.store.lineage import interval_shifts

OK, ALERT, SKIPPED = "ok", "alert", "skipped"
_Z_CAP = 1e6
_MAD_SCALE = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a normal sample -> its sd


@dataclass
class CheckResult:
    """Outcome of one check: status, measured value, its threshold and a one-line message."""

    name: str
    status: str
    message: str
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "details": self.details,
        }


def freshness(store: Store, as_of: dt.date, cfg: dict[str, Any]) -> CheckResult:
    """Days from the latest sales week (period start) to ``as_of``; alert above the limit."""
    limit = cfg["max_age_days"]
    latest = store.execute("SELECT max(date) FROM sales")[0][0]
    if latest is None:
        return CheckResult("freshness", SKIPPED, "no sales loaded", None, limit)
    age = (as_of - latest).days
    status = ALERT if age > limit else OK
    msg = f"latest sales week {latest} is {age} days before {as_of}" + (
        f" (limit {limit})" if status == ALERT else ""
    )
    return CheckResult(
        "freshness",
        status,
        msg,
        float(age),
        float(limit),
        {"latest_week": str(latest), "as_of": str(as_of)},
    )


def robust_z(value: float, history: np.ndarray) -> float:
    """(value - median) / (1.4826 * MAD) of ``history``.

    When the MAD is zero the mean absolute deviation (times sqrt(pi/2)) is the scale; when
    that is zero too, any departure from the constant history gives +/- 1e6.
    """
    med = float(np.median(history))
    scale = _MAD_SCALE * float(np.median(np.abs(history - med)))
    if scale == 0:
        scale = math.sqrt(math.pi / 2) * float(np.mean(np.abs(history - med)))
    if scale == 0:
        return 0.0 if value == med else math.copysign(_Z_CAP, value - med)
    return max(-_Z_CAP, min(_Z_CAP, (value - med) / scale))


def _weekly_units(store: Store, as_of: dt.date) -> pl.DataFrame:
    """Units per market and week up to ``as_of``, weeks without rows filled with 0."""
    df = store.query(
        "SELECT market, date_trunc('week', date)::DATE AS week, sum(quantity)::DOUBLE AS units "
        "FROM sales WHERE date <= ? GROUP BY 1, 2 ORDER BY 1, 2",
        [as_of],
    )
    if df.height == 0:
        return df
    last = cast(dt.date, df["week"].max())  # a DATE column of a non-empty frame
    grids = []
    for market, first in df.group_by("market").agg(pl.col("week").min()).iter_rows():
        weeks = pl.date_range(first, last, interval="1w", eager=True)
        grids.append(pl.DataFrame({"market": [market] * len(weeks), "week": weeks}))
    grid = pl.concat(grids)
    return (
        grid.join(df, on=["market", "week"], how="left")
        .with_columns(pl.col("units").fill_null(0.0))
        .sort("market", "week")
    )


def volume(store: Store, as_of: dt.date, cfg: dict[str, Any]) -> CheckResult:
    """Last week's units per market against its trailing weeks (robust z of log units).

    ``seasonal`` compares year-over-year log ratios log((1 + u_t) / (1 + u_{t-52})) instead of
    log(1 + u_t), which removes the yearly cycle (holidays, end-of-season sales); ``auto`` does
    so when a market has a year plus ``min_weeks`` of history.
    """
    limit, n_win, n_min = cfg["max_robust_z"], cfg["trailing_weeks"], cfg["min_weeks"]
    weekly = _weekly_units(store, as_of)
    if weekly.height == 0:
        return CheckResult("volume", SKIPPED, f"no sales on or before {as_of}", None, limit)
    last = cast(dt.date, weekly["week"].max())  # a DATE column of a non-empty frame
    markets: list[dict[str, Any]] = []
    for (market,), part in weekly.group_by(["market"], maintain_order=True):
        units = part["units"].to_numpy()
        if part["week"][-1] != last:
            continue
        logs = np.log1p(units)
        seasonal = cfg["seasonal"] is True or (
            cfg["seasonal"] == "auto" and units.size >= 52 + n_min + 1
        )
        if seasonal and units.size >= 52 + 2:
            series = logs[52:] - logs[:-52]
        else:
            seasonal, series = False, logs
        history = series[:-1][-n_win:]
        rec: dict[str, Any] = {
            "market": market,
            "week": str(last),
            "units": float(units[-1]),
            "trailing_median_units": float(np.median(units[:-1][-n_win:]))
            if units.size > 1
            else None,
            "method": "yoy" if seasonal else "level",
            "weeks": int(history.size),
        }
        if history.size < n_min:
            rec.update(status=SKIPPED, z=None)
        else:
            z = robust_z(float(series[-1]), history)
            rec.update(status=ALERT if abs(z) > limit else OK, z=round(z, 4))
        markets.append(rec)
    scored = [m for m in markets if m["status"] != SKIPPED]
    if not scored:
        return CheckResult(
            "volume",
            SKIPPED,
            f"fewer than {n_min} trailing weeks in every market",
            None,
            limit,
            {"markets": markets},
        )
    worst = max(scored, key=lambda m: abs(m["z"]))
    alerts = [m for m in scored if m["status"] == ALERT]
    if alerts:
        names = ", ".join(
            f"{m['market']} (z={m['z']:+.1f}, {m['units']:.0f} units vs median "
            f"{m['trailing_median_units']:.0f})"
            for m in alerts
        )
        msg = f"week {last}: unusual volume in {names}"
    else:
        msg = (
            f"week {last}: volume normal in {len(scored)} market(s) (max |z| {abs(worst['z']):.1f})"
        )
    return CheckResult(
        "volume",
        ALERT if alerts else OK,
        msg,
        abs(worst["z"]),
        limit,
        {"week": str(last), "markets": markets},
    )


def drift(store: Store, as_of: dt.date, cfg: dict[str, Any]) -> CheckResult:
    """Share of items whose elasticity interval moved clear of the previous production run's.

    Compares the production run with the production run it replaced (see
    :func:`pricelab.monitor.production.drift_pair`); ad-hoc and refused estimate runs are never compared.
    """
    limit = cfg["max_share"]
    pair = drift_pair(store)
    if isinstance(pair, str):
        return CheckResult("drift", SKIPPED, pair, None, limit)
    old, new = pair
    moved, n = interval_shifts(
        store.read_result("elasticities", old), store.read_result("elasticities", new)
    )
    details = {
        "previous_run": old,
        "latest_run": new,
        "compared": n,
        "moved": moved.height,
        "items": moved.head(20).to_dicts(),
    }
    if n == 0:
        return CheckResult(
            "drift",
            SKIPPED,
            f"runs {old} and {new} share no items with intervals",
            None,
            limit,
            details,
        )
    share = moved.height / n
    status = ALERT if share > limit else OK
    return CheckResult(
        "drift",
        status,
        f"{moved.height} of {n} items ({share:.1%}) moved beyond their intervals "
        f"from run {old} to {new}",
        share,
        limit,
        details,
    )


def fit(store: Store, as_of: dt.date, cfg: dict[str, Any]) -> CheckResult:
    """Share of groups of the production estimate run (no promotion yet: the latest) that
    failed or carry a configured flag."""
    limit, bad_flags = cfg["max_share"], set(cfg["flags"])
    runs = serving_estimate(store)
    if not runs:
        return CheckResult("fit", SKIPPED, "no estimate run", None, limit)
    run_id = runs[0]["run_id"]
    est = store.read_result("elasticities", run_id)
    if est.height == 0 or "elasticity" not in est.columns:
        return CheckResult(
            "fit",
            SKIPPED,
            f"estimate run {run_id} stored no elasticities",
            None,
            limit,
            {"run": run_id},
        )
    flags = (
        est["flags"].fill_null("").str.split(",").to_list()
        if "flags" in est.columns
        else [[] for _ in range(est.height)]
    )
    values = est["elasticity"].cast(pl.Float64).to_list()
    counts: dict[str, int] = {}
    n_bad = 0
    for value, fl in zip(values, flags, strict=True):
        hit = sorted(bad_flags.intersection(fl))
        failed = value is None or not math.isfinite(value)
        if failed and "failed" not in hit:
            hit.append("failed")
        for name in hit:
            counts[name] = counts.get(name, 0) + 1
        n_bad += bool(hit)
    share = n_bad / est.height
    status = ALERT if share > limit else OK
    return CheckResult(
        "fit",
        status,
        f"{n_bad} of {est.height} groups ({share:.1%}) flagged or failed in estimate run {run_id}",
        share,
        limit,
        {"run": run_id, "groups": est.height, "bad": n_bad, "by_flag": counts},
    )


def plan(store: Store, as_of: dt.date, cfg: dict[str, Any]) -> CheckResult:
    """Alert when production has no plan or its plan is older than the limit.

    With a promoted run, the plan judged is the newest one built on the production estimates
    (an analyst's ad-hoc ``optimize`` on other estimates is not judged). With nothing promoted,
    the newest plan, which must not predate the newest estimate run.
    """
    limit = cfg["max_age_days"]
    plans = latest_runs(store, "optimize", 1)
    if not plans:
        return CheckResult("plan", SKIPPED, "no optimize run", None, limit)
    prod = production_rows(store)
    ests = serving_estimate(store)
    problems = []
    if prod:
        production = str(prod[0]["run_id"])
        found = production_plan(store, production)
        if found is None:
            return CheckResult(
                "plan",
                ALERT,
                f"production estimate run {production} has no plan yet (newest plan "
                f"{plans[0]['run_id']} is built on other estimates)",
                None,
                float(limit),
                {"serving_estimate": production, "newest_plan": plans[0]["run_id"]},
            )
        p = found
    else:
        p = plans[0]
    age = (as_of - p["started_at"].date()).days
    details: dict[str, Any] = {
        "plan_run": p["run_id"],
        "created": str(p["started_at"]),
        "age_days": age,
    }
    if age < 0:  # the plan did not exist yet at as-of: its age there means nothing
        return CheckResult(
            "plan",
            SKIPPED,
            f"plan {p['run_id']} was created on {p['started_at'].date()}, after the as-of "
            f"date {as_of}: no plan existed then to judge (run without --as-of to judge it "
            "today)",
            None,
            float(limit),
            details,
        )
    if ests:
        e = ests[0]
        details["serving_estimate"] = e["run_id"]
        if e["run_id"] not in p["parents"] and e["started_at"] > p["started_at"]:
            problems.append(f"estimate run {e['run_id']} is newer than plan {p['run_id']}")
    if age > limit:
        problems.append(f"plan {p['run_id']} is {age} days old (limit {limit})")
    if problems:
        return CheckResult("plan", ALERT, "; ".join(problems), float(age), float(limit), details)
    msg = f"plan {p['run_id']} is {age} days old"
    if ests:
        msg += (
            " and built on the " + ("production" if prod else "latest") + " estimate"
            if ests[0]["run_id"] in p["parents"]
            else " and newer than the latest estimate"
        )
    return CheckResult("plan", OK, msg, float(age), float(limit), details)


CHECKS = {"freshness": freshness, "volume": volume, "drift": drift, "fit": fit, "plan": plan}
