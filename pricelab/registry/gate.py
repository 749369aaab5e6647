"""The promotion gate: a rolling-origin backtest of a candidate estimate run against production.

Both runs are refitted with their stored parameters (model, grouping, controls, ``before``
window...) on the weeks before each origin and predict the following ``horizon_weeks`` weeks
at the prices actually charged. Origins are the last ``cutoffs`` blocks of ``horizon_weeks``
weeks of the loaded sales, so both runs are scored on the same recent weeks and the same rows
(test weeks of item × markets that sold in the ``naive_weeks`` before the origin); a run with
no estimate for a group falls back to the naive forecast there, as in
:func:`pricelab.simulate.backtest`.

Checks (all must pass):

* ``grain`` — the candidate is per item × market (what optimize and simulate consume);
* ``wape`` — pooled WAPE better than production's by at least ``min_improvement_wape``
  percent (relative: ``wape_c < wape_p * (1 - margin / 100)``, strictly, so a tie keeps
  production); with no production run yet the candidate must beat the naive forecast
  (``wape_c < wape_naive``). A candidate with production's settings (same model, grouping,
  controls, window) refits exactly like production, so the backtest cannot tell them apart:
  when it was estimated on other (newer) inputs it is a *refresh* and, with ``refresh``
  on (the default), passes this check; on the same inputs it is a tie and production stays;
* ``flags`` — the share of groups flagged ``positive``, ``no_price_variation`` or
  ``weak_instrument`` (:data:`pricelab.elasticity.results.GATE_FLAGS`, also importable as
  ``pricelab.registry.GATE_FLAGS``) grows by at most ``tolerance_flags`` percentage points;
* ``rollback`` — only when production was set by hand (``promote --force``, e.g. a
  rollback): the candidate must be estimated after that decision on inputs that changed since
  (:func:`pricelab.registry.promote.rollback_pin`), so a manual rollback sticks until new data
  and a candidate that wins on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pricelab.configfile import MAX_WEEKS
from pricelab.elasticity.results import GATE_FLAGS, has_any_flag
from pricelab.errors import UsageError
from pricelab.simulate.backtest import dispersion, forecast_scores, interval

KEYS = ["item_id", "market"]
NAIVE = "naive"


@dataclass(frozen=True)
class GateConfig:
    """Tolerances and backtest windows of the gate.

    Attributes
    ----------
    min_improvement_wape : float
        Percent (relative) by which the candidate's WAPE must be lower than production's,
        default 1; 0 means strictly lower. A tie never replaces production.
    tolerance_flags : float
        Percentage points by which the share of flagged groups may grow, default 5.
    horizon_weeks, cutoffs, naive_weeks : int
        Weeks predicted per origin, number of origins, window of the naive forecast.
    flags : tuple of str
        Flags that count as "flagged", default :data:`~pricelab.elasticity.results.GATE_FLAGS`.
    refresh : bool
        A candidate with production's settings estimated on other inputs passes the WAPE
        check (the nightly re-estimate on new data), default True.
    """

    min_improvement_wape: float = 1.0
    tolerance_flags: float = 5.0
    horizon_weeks: int = 4
    cutoffs: int = 3
    naive_weeks: int = 8
    flags: tuple[str, ...] = GATE_FLAGS
    refresh: bool = True

    def __post_init__(self) -> None:
        if not self.min_improvement_wape < 100:
            raise UsageError(
                f"min-improvement-wape must be below 100 (percent), got {self.min_improvement_wape!r}"
            )
        for name in ("min_improvement_wape", "tolerance_flags"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise UsageError(f"{name.replace('_', '-')} must be a number >= 0, got {v!r}")
        for name in ("horizon_weeks", "cutoffs", "naive_weeks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_WEEKS:
                raise UsageError(
                    f"{name.replace('_', '-')} must be a whole number from 1 to {MAX_WEEKS}, "
                    f"got {v!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "min_improvement_wape": self.min_improvement_wape,
            "tolerance_flags": self.tolerance_flags,
            "horizon_weeks": self.horizon_weeks,
            "cutoffs": self.cutoffs,
            "naive_weeks": self.naive_weeks,
            "flags": list(self.flags),
            "refresh": self.refresh,
        }


def refit_spec(parameters: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Keyword arguments of :func:`pricelab.elasticity.estimate` that reproduce a stored run.

    Returns ``(kwargs, before)``: ``before`` is the run's training cut-off (ISO date or None).
    """
    fit = parameters.get("fit") or {}
    model = parameters["model"]
    kw: dict[str, Any] = {"model": model}
    by = fit.get("by")
    if by is None and parameters.get("by"):
        by = [c.strip() for c in str(parameters["by"]).split(",")]
    if model != "panel" and by is not None:
        kw["by"] = list(by)
    for key in ("controls", "se", "alpha", "min_obs"):
        if key in fit:
            kw[key] = fit[key]
    if fit.get("fixed_effects"):
        kw["fixed_effects"] = list(fit["fixed_effects"])
    if model == "panel":
        if fit.get("pool_by"):
            kw["pool_by"] = list(fit["pool_by"])
        kw["slope"] = fit.get("slope", parameters.get("slope", "item"))
    elif model == "hierarchical" and fit.get("tau"):
        kw["tau"] = fit["tau"]
    elif model == "iv":
        kw["instrument"] = fit.get("instrument", parameters.get("instrument"))
        if fit.get("iv_method"):
            kw["iv_method"] = fit["iv_method"]
    return kw, parameters.get("before")


def gate_origins(last_week: dt.date, horizon_weeks: int, cutoffs: int) -> list[dt.date]:
    """Origins whose windows tile the last ``cutoffs * horizon_weeks`` weeks, oldest first."""
    final = last_week - dt.timedelta(weeks=horizon_weeks - 1)
    return [final - dt.timedelta(weeks=horizon_weeks * k) for k in range(cutoffs)][::-1]


def flagged_share(elasticities: pl.DataFrame, flags: tuple[str, ...] = GATE_FLAGS) -> float:
    """Share of groups whose ``flags`` contain any of ``flags`` (0 for an empty table).

    Flags are matched as whole names (:func:`pricelab.elasticity.results.has_any_flag`).
    """
    if elasticities.height == 0 or "flags" not in elasticities.columns:
        return 0.0
    hit = elasticities.select(has_any_flag(flags).alias("hit"))["hit"]
    return float(hit.sum()) / elasticities.height


def _score(frame: pl.DataFrame, cutoff: str, role: str, phi: float) -> dict[str, Any]:
    return {"cutoff": cutoff, "role": role, **forecast_scores(frame, phi)}


def _with_by(frame: pl.DataFrame, items: pl.DataFrame | None, by: list[str]) -> pl.DataFrame:
    need = [c for c in by if c not in frame.columns]
    if need and items is not None and all(c in items.columns for c in need):
        frame = frame.join(items.select("item_id", *need), on="item_id", how="left")
    return frame


def score_specs(
    sales: pl.DataFrame,
    items: pl.DataFrame | None,
    specs: dict[str, tuple[dict[str, Any], str | None]],
    origins: list[dt.date],
    horizon_weeks: int,
    naive_weeks: int,
) -> pl.DataFrame:
    """Backtest each ``role -> (estimate kwargs, before)`` and the naive forecast.

    Returns one row per origin × role and per role over all origins (``cutoff = "all"``):
    ``cutoff, role, n_rows, n_fallback, actual_units, predicted_units, wape, bias_pct,
    deviance, rmse, coverage_90, dispersion``.

    Raises
    ------
    UsageError
        An origin has no history before it, or no scored sales after it.
    """
    from pricelab.elasticity import estimate

    if sales.schema["date"] != pl.Date:
        sales = sales.with_columns(pl.col("date").cast(pl.Date))
    rows: list[dict[str, Any]] = []
    frames: dict[str, list[pl.DataFrame]] = {r: [] for r in [NAIVE, *specs]}
    phis: dict[str, list[float]] = {r: [] for r in frames}
    for origin in origins:
        label = origin.isoformat()
        end = origin + dt.timedelta(weeks=horizon_weeks)
        train = sales.filter(pl.col("date") < origin)
        recent = train.filter(pl.col("date") >= origin - dt.timedelta(weeks=naive_weeks))
        naive = recent.group_by(KEYS).agg(pl.col("quantity").mean().alias("naive"))
        test = (
            sales.filter((pl.col("date") >= origin) & (pl.col("date") < end))
            .join(naive, on=KEYS, how="inner")
            .sort([*KEYS, "date"])
        )
        if train.height == 0 or test.height == 0:
            raise UsageError(
                f"gate origin {label}: needs sales before it and, for items sold "
                f"in the {naive_weeks} weeks before it, sales in the "
                f"{horizon_weeks} weeks after it"
            )
        base = test.select(*KEYS, "date", "quantity")
        naive_pred = test["naive"].to_numpy().astype(float)
        rfit = recent.join(naive, on=KEYS)
        phi = dispersion(rfit, rfit["naive"].to_numpy().astype(float))
        results = {NAIVE: (naive_pred, np.zeros(test.height, dtype=bool), phi)}
        for role, (kwargs, before) in specs.items():
            cut = origin if before is None else min(origin, dt.date.fromisoformat(str(before)))
            tr = train.filter(pl.col("date") < cut)
            if tr.height == 0:
                raise UsageError(
                    f"gate origin {label}: the {role} run's window "
                    f"(before {before}) leaves no weeks to fit on"
                )
            res = estimate(tr, items=items, **kwargs)
            by = list(res.by)
            pred = res.predict(_with_by(test.drop("naive"), items, by))
            p = pred["expected_quantity"].to_numpy().astype(float)
            fb = ~np.isfinite(p)
            fit = res.predict(_with_by(tr, items, by))
            mu = fit["expected_quantity"].to_numpy().astype(float)
            results[role] = (
                np.where(fb, naive_pred, p),
                fb,
                dispersion(fit, np.where(np.isfinite(mu), mu, np.nan)),
            )
        for role, (p, fb, ph) in results.items():
            lo, hi = interval(p, ph)
            frame = base.with_columns(
                pl.Series("predicted", p),
                pl.Series("fallback", fb),
                pl.Series("low", lo),
                pl.Series("high", hi),
            )
            rows.append(_score(frame, label, role, ph))
            frames[role].append(frame)
            phis[role].append(ph)
    for role, parts in frames.items():
        rows.append(_score(pl.concat(parts), "all", role, float(np.mean(phis[role]))))
    return pl.DataFrame(rows)


@dataclass
class GateComparison:
    """Scores of candidate, production and naive, flagged shares and the gate's checks."""

    candidate: str
    production: str | None
    config: GateConfig
    origins: list[str]
    scores: pl.DataFrame
    flagged: dict[str, float]
    models: dict[str, str]
    grain: list[str] = field(default_factory=lambda: list(KEYS))
    checks: list[dict[str, Any]] = field(default_factory=list)
    same_settings: bool = False
    same_inputs: bool = False

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c["passed"] for c in self.checks)

    def table(self) -> pl.DataFrame:
        """Pooled scores per role with run, model and flagged share (the comparison table)."""
        runs = {"candidate": self.candidate, "production": self.production, NAIVE: None}
        order = {"production": 0, "candidate": 1, NAIVE: 2}
        overall = self.scores.filter(pl.col("cutoff") == "all").sort(
            pl.col("role").replace_strict(order, default=3, return_dtype=pl.Int64)
        )
        return overall.select(
            "role",
            pl.col("role")
            .replace_strict(runs, default=None, return_dtype=pl.String)
            .alias("run_id"),
            pl.col("role")
            .replace_strict(self.models, default=NAIVE, return_dtype=pl.String)
            .alias("model"),
            "wape",
            "bias_pct",
            "deviance",
            "coverage_90",
            "n_rows",
            "n_fallback",
            pl.col("role")
            .replace_strict(self.flagged, default=None, return_dtype=pl.Float64)
            .alias("flagged_share"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the registry and the promote run)."""
        return {
            "candidate": self.candidate,
            "production": self.production,
            "passed": self.passed,
            "config": self.config.to_dict(),
            "origins": self.origins,
            "checks": self.checks,
            "same_settings": self.same_settings,
            "same_inputs": self.same_inputs,
            "table": self.table().to_dicts(),
        }


def _wape_check(comp: GateComparison, wape_c: float, wape_p: float) -> dict[str, Any]:
    """The WAPE check against production: a margin, or a refresh of production's settings."""
    cfg = comp.config
    check: dict[str, Any] = {"check": "wape", "candidate": wape_c, "reference": wape_p}
    if comp.same_settings and cfg.refresh and not comp.same_inputs:
        return check | {
            "limit": None,
            "passed": True,
            "rule": "refresh: production's settings on newer inputs (the backtest refits "
            "both identically, so WAPE cannot tell them apart)",
        }
    limit = wape_p * (1 - cfg.min_improvement_wape / 100)
    rule = f"WAPE < production WAPE x (1 - {cfg.min_improvement_wape:g}%): a tie keeps production"
    if comp.same_settings:
        why = "the same inputs" if comp.same_inputs else "other inputs, refresh off"
        rule += f" (production's settings on {why})"
    return check | {"limit": limit, "passed": bool(wape_c < limit), "rule": rule}


def evaluate(comparison: GateComparison) -> GateComparison:
    """Fill ``comparison.checks`` from its scores and flagged shares."""
    cfg = comparison.config
    t = {r["role"]: r for r in comparison.table().iter_rows(named=True)}
    cand = t["candidate"]
    grain_ok = sorted(comparison.grain) == sorted(KEYS)
    checks: list[dict[str, Any]] = [
        {
            "check": "grain",
            "candidate": ",".join(comparison.grain),
            "reference": ",".join(KEYS),
            "limit": None,
            "passed": grain_ok,
            "rule": "estimated per item_id x market (what optimize and simulate use)",
        }
    ]
    if comparison.production is not None:
        checks.append(_wape_check(comparison, cand["wape"], t["production"]["wape"]))
        flim = comparison.flagged["production"] + cfg.tolerance_flags / 100
        checks.append(
            {
                "check": "flags",
                "candidate": comparison.flagged["candidate"],
                "reference": comparison.flagged["production"],
                "limit": flim,
                "passed": bool(comparison.flagged["candidate"] <= flim + 1e-12),
                "rule": f"flagged share <= production + {cfg.tolerance_flags:g} points",
            }
        )
    else:
        naive = t[NAIVE]
        checks.append(
            {
                "check": "wape",
                "candidate": cand["wape"],
                "reference": naive["wape"],
                "limit": naive["wape"],
                "passed": bool(cand["wape"] < naive["wape"]),
                "rule": "no production run yet: WAPE < naive forecast WAPE",
            }
        )
    comparison.checks = checks
    return comparison
