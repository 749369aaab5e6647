"""The table of fitters behind :func:`pricelab.elasticity.estimate`, keyed by model name.

A fitter takes a :class:`FitJob` (the checked sales frame, groups, controls and the
caller's options), records its own settings in ``job.params`` and returns a
:class:`Fitted`: the per-group arrays, their keys and coefficient names, the method
name recorded per row and the ``trend`` origin. ``estimate`` validates, looks the model
up in :data:`FITTERS` and wraps the result; adding a model is one function and one
entry here (its ``method`` needs a fit-statistic name in ``model.FIT_STAT``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from . import design as D


@dataclass
class FitJob:
    """What every fitter gets: data, groups, controls and the caller's options."""

    df: pl.DataFrame
    by: list[str]
    controls: list[str]
    fixed_effects: list[str]
    params: dict[str, Any]  # recorded with the results; fitters add their settings
    options: dict[str, Any] = field(default_factory=dict)  # estimate's keyword arguments


@dataclass
class Fitted:
    """What a fitter returns (``origin``: the first week, where the trend is zero)."""

    out: dict[str, np.ndarray]
    keys: pl.DataFrame
    names: list[str]
    method: str
    origin: Any
    fit_name: str | None = None  # overrides FIT_STAT[method]


@dataclass(frozen=True)
class Fitter:
    """One model: its fit function and whether it takes an ``instrument``."""

    fit: Callable[[FitJob], Fitted]
    instrument: bool = False


#: models ``pricelab estimate`` knows that are not per-group fitters, and why: backtest, the
#: pipeline, the Spark engine and :func:`pricelab.elasticity.estimate` run the fitters of
#: :data:`FITTERS` only, each of which fits one group's rows
NOT_PER_GROUP = {
    "cross": "a cross-price model is not a per-group fitter: each item's regression needs "
    "its siblings' prices in the same market and week (one design per category, "
    "pricelab.elasticity.cross.estimate_cross), and its forecasts need the siblings' prices "
    "too, which backtest, the pipeline and the Spark engine do not carry; estimate it with "
    "'pricelab estimate --model cross' and use the run in optimize, simulate and report",
}


def not_per_group(model: str) -> UsageError | None:
    """The error for a model that is not a per-group fitter.

    Parameters
    ----------
    model : str
        A model name.

    Returns
    -------
    UsageError or None
        The error saying why ``model`` cannot run here (raise it); None for any other name.
    """
    why = NOT_PER_GROUP.get(model)
    return UsageError(f"model '{model}': {why}") if why else None


def first_date(df: pl.DataFrame) -> dt.date | None:
    """The first week in the data (the ``trend`` origin), or None without dates."""
    if "date" not in df.columns:
        return None
    first = df["date"].min()
    return first if isinstance(first, dt.date) else None


def fit_ols(job: FitJob) -> Fitted:
    """Log-log OLS per group (weeks with q > 0); fixed effects absorbed when given."""
    o = job.options
    if job.fixed_effects:
        from .panel import fit_absorbed_ols

        d = D.build(job.df, job.by, job.controls)
        out = fit_absorbed_ols(d, job.fixed_effects, se=o["se"], min_obs=o["min_obs"])
        # the R² of the demeaned regression (net of the effects)
        return Fitted(out, d.keys, d.names, "ols", d.origin, fit_name="within_r2")
    from .glm_blocks import fit_ols_runs

    origin = first_date(job.df)
    out, keys, names = fit_ols_runs(
        job.df,
        job.by,
        job.controls,
        origin,
        se=o["se"],
        min_obs=o["min_obs"],
        max_cells=o["max_cells"],
        progress=o["progress"],
        hac_lags=o["hac_lags"],
    )
    job.params["hac_lags"] = o["hac_lags"]
    return Fitted(out, keys, names, "ols", origin)


def _poisson(job: FitJob, calendar: bool = False) -> tuple[Fitted, pl.DataFrame]:
    from .glm_blocks import fit_poisson_runs

    o = job.options
    origin = first_date(job.df)
    out, keys, names, first = fit_poisson_runs(
        job.df,
        job.by,
        job.controls,
        origin,
        se=o["se"],
        min_obs=o["min_obs"],
        max_cells=o["max_cells"],
        progress=o["progress"],
        events_per_param=o["events_per_param"],
        calendar=calendar,
    )
    job.params["events_per_param"] = o["events_per_param"]
    return Fitted(out, keys, names, job.params["model"], origin), first


def fit_poisson(job: FitJob) -> Fitted:
    """Poisson pseudo-maximum likelihood per group (zero weeks included)."""
    return _poisson(job)[0]


def fit_hierarchical(job: FitJob) -> Fitted:
    """Poisson per group shrunk by empirical Bayes within pooling levels, then refit."""
    from .hierarchical import shrink
    from .refit import refit_runs

    fitted, first = _poisson(job, calendar=True)
    o = job.options
    hpool = list(o["pool_by"]) if o["pool_by"] else None
    out, used = shrink(fitted.out, first, fitted.out["mean_quantity"], hpool, tau=o["tau"])
    refit_runs(job.df, job.by, job.controls, fitted.origin, out, max_cells=o["max_cells"])
    job.params.update(pool_by=used, tau=o["tau"])
    fitted.out = out
    return fitted


def fit_panel(job: FitJob) -> Fitted:
    """Pooled within ``pool_by`` with item and week fixed effects, clustered by item."""
    from .panel import SEASONAL, default_pool
    from .panel import fit_panel as fit

    o = job.options
    df = job.df
    pool = list(o["pool_by"]) if o["pool_by"] else default_pool(df)
    for c in pool:
        if c not in df.columns:
            raise UsageError(f"unknown pooling column '{c}'")
    out, keys, pnames = fit(
        df, job.by, pool, job.controls, job.fixed_effects, slope=o["slope"], min_obs=o["min_obs"]
    )
    unit = list(dict.fromkeys([*(job.by or ["item_id", "market"]), *pool]))
    # seasonal controls are absorbed by the week effects: record the controls actually used
    used = [c for c in job.controls if c not in SEASONAL]
    se = f"cluster({','.join(unit)})" if o["slope"] == "common" else "HC1 within unit"
    job.params.update(pool_by=pool, slope=o["slope"], se=se, controls=used)
    origin = str(df["date"].min()) if "date" in df.columns else None
    return Fitted(out, keys, pnames, "panel", origin)


def fit_iv(job: FitJob) -> Fitted:
    """2SLS, or a Poisson control function with ``iv_method="cf"``."""
    from .iv import fit_iv as fit
    from .iv import resolve_instruments

    o = job.options
    df, zcols = resolve_instruments(job.df, o["instrument"])
    d = D.build(df, job.by, job.controls)
    out = fit(
        d, zcols, se=o["se"], min_obs=o["min_obs"], method=o["iv_method"], max_cells=o["max_cells"]
    )
    job.params.update(instrument=o["instrument"], iv_method=o["iv_method"])
    method = "iv-cf" if o["iv_method"] == "cf" else "iv"
    return Fitted(out, d.keys, d.names, method, d.origin)


#: model name -> fitter (the order is the order users see in messages)
FITTERS: dict[str, Fitter] = {
    "ols": Fitter(fit_ols),
    "poisson": Fitter(fit_poisson),
    "panel": Fitter(fit_panel),
    "hierarchical": Fitter(fit_hierarchical),
    "iv": Fitter(fit_iv, instrument=True),
}
