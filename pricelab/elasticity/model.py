"""``estimate``: the one entry point of the elasticity library, and ``fit_partition``.

``estimate`` checks its input, groups the rows and hands them to the model's fitter in
:data:`~pricelab.elasticity.fitters.FITTERS` (batched kernels block by block:
:mod:`.glm_blocks` for ``ols``/``poisson``/``hierarchical``, a padded design from
:mod:`.design` for :mod:`.iv` and :mod:`.panel`, pooling in :mod:`.hierarchical`), then
wraps the per-group arrays in an :class:`~pricelab.elasticity.results.ElasticityResults`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from . import design as D
from .fitters import FITTERS, FitJob, not_per_group
from .groupfit import flag_series, flag_signs
from .results import ElasticityResults
from .sparse import EVENTS_PER_PARAM

MODELS = tuple(FITTERS)
SE_TYPES = ("HC0", "HC1", "HC3", "cluster", "nonrobust", "HAC")
FIT_STAT = {
    "ols": "r2",
    "poisson": "pseudo_r2",
    "hierarchical": "pseudo_r2",
    "iv": "r2",
    "iv-cf": "pseudo_r2",
    "panel": "within_r2",
}


def estimate(
    sales: pl.DataFrame,
    *,
    model: str = "hierarchical",
    by: str | Sequence[str] | None = ("item_id", "market"),
    instrument: str | Sequence[str] | None = None,
    items: pl.DataFrame | None = None,
    slope: str = "item",
    controls: str | Sequence[str] | None = "default",
    fixed_effects: Sequence[str] | None = None,
    se: str | None = None,
    alpha: float = 0.05,
    min_obs: int = 8,
    iv_method: str = "2sls",
    pool_by: Sequence[str] | None = None,
    tau: str = "level",
    max_cells: float = 4e6,
    progress: Callable[[int, int], None] | None = None,
    hac_lags: int | None = None,
    events_per_param: float = EVENTS_PER_PARAM,
) -> ElasticityResults:
    """Estimate constant price elasticities per group.

    Parameters
    ----------
    sales:
        polars frame ``item_id, market, date, price, quantity`` (+ ``promo``,
        ``unit_cost``, any control/instrument column); one row per group × week.
    model:
        ``ols`` (log q on log p, weeks with q > 0), ``poisson`` (PML, zeros included),
        ``panel`` (pooled within ``pool_by`` with item and week fixed effects),
        ``hierarchical`` (Poisson per group shrunk by empirical Bayes, the default) or
        ``iv`` (2SLS, or a Poisson control function with ``iv_method="cf"``).
    by:
        Group columns (from ``sales`` or ``items``); ``None`` pools every row.
    instrument:
        ``iv`` only: a column name (``unit_cost`` enters as its log), ``hausman`` (mean log
        price of the item in the other markets that week) or a list of columns.
    items:
        Optional ``item_id, category, brand, boutique_id`` table (hierarchy, ``by``).
    slope:
        ``panel`` only: ``item`` (one slope per item) or ``common``.
    controls:
        ``"default"`` (promo, Fourier pair of week of year, trend), ``None`` or a list
        of names (``promo, fourier, fourier2, trend`` or numeric columns of ``sales``).
    fixed_effects:
        ``ols`` and ``panel``: columns whose levels are absorbed within each group.
    se:
        ``HC1``, ``HC0``, ``HC3`` (scores divided by ``1 - h``, the row's leverage),
        ``cluster`` (HC3-corrected scores summed in blocks of 13 consecutive weeks of the
        group, factor ``c/(c-1)`` for ``c`` blocks, or HC3 when that is larger: robust to
        promotion weeks of high leverage and to serial correlation; ``HC3`` without
        dates), ``nonrobust`` or
        (``ols`` only) ``HAC`` (Newey-West, Bartlett kernel, lags in weeks within each
        group). Default (None): ``cluster`` for ``ols``, ``poisson`` and ``hierarchical``,
        ``HC1`` for ``iv`` and ``ols`` with fixed effects; ``panel`` always clusters by item. ``HC3`` and ``cluster``
        are available for ``ols`` (without fixed effects), ``poisson`` and
        ``hierarchical``.
    alpha:
        Confidence intervals are at level ``1 - alpha``.
    min_obs:
        Groups with fewer usable weeks are reported as NaN with flag ``few_obs``.
    pool_by:
        ``panel``/``hierarchical``: the pooling level (default category × market when
        ``items`` has a category, else market).
    tau:
        ``hierarchical`` only: ``level`` (a between-group spread per pooling level, e.g.
        per category × market; integrated over its posterior) or ``common`` (one per layer).
    progress:
        Optional ``progress(done, total)`` callback, called as blocks of groups finish
        (``ols`` and ``poisson``), e.g. to drive a rich progress bar.
    hac_lags:
        ``se="HAC"`` bandwidth in weeks (default ``floor(4 (n/100)^(2/9))`` per group).
    events_per_param:
        ``poisson``/``hierarchical``: non-zero weeks a group needs per nuisance parameter
        (promo, Fourier pair, trend, second Fourier pair, added in that order) for the
        control to enter its fit (default 10; 0 keeps every control). Nuisance columns
        with a variance inflation above 10 given the earlier ones are left out too, and
        separated fits are flagged (see :mod:`pricelab.elasticity.sparse`).

    Returns
    -------
    ElasticityResults

    Raises
    ------
    UsageError
        Unknown model, ``by`` column, instrument or option.
    EmptyStoreError, DataError
        Empty input, missing or invalid columns.
    """
    se = _checked_options(
        model=model,
        se=se,
        slope=slope,
        fixed_effects=fixed_effects,
        hac_lags=hac_lags,
        tau=tau,
        alpha=alpha,
        events_per_param=events_per_param,
    )
    by_cols = D.normalize_by(by)
    if model in ("ols", "poisson") and items is not None and isinstance(sales, pl.DataFrame):
        # these fits read only group and fixed-effect columns from items: join just those
        need = [c for c in (*by_cols, *(fixed_effects or [])) if c not in sales.columns]
        items = items.select("item_id", *[c for c in need if c in items.columns])
    df = D.with_items(sales, items) if isinstance(sales, pl.DataFrame) and sales.height else sales
    D.check_sales(df, by_cols)
    ctrl = D.resolve_controls(controls)
    fe = list(fixed_effects or [])
    if fe and model not in ("ols", "panel"):
        raise UsageError(f"fixed effects are used by models ols and panel, not '{model}'")
    for c in fe:
        if c not in df.columns:
            raise UsageError(f"unknown fixed-effect column '{c}'")
    if instrument is not None and not FITTERS[model].instrument:
        raise UsageError(f"instrument is only used by model {_takes_instrument()}")
    params: dict[str, Any] = {
        "model": model,
        "by": by_cols,
        "controls": ctrl,
        "se": se,
        "alpha": alpha,
        "min_obs": min_obs,
        "fixed_effects": fe,
        "end": _last_date(df),
    }
    options = {
        "instrument": instrument,
        "slope": slope,
        "se": se,
        "min_obs": min_obs,
        "iv_method": iv_method,
        "pool_by": pool_by,
        "tau": tau,
        "max_cells": max_cells,
        "progress": progress,
        "hac_lags": hac_lags,
        "events_per_param": events_per_param,
    }
    f = FITTERS[model].fit(FitJob(df, by_cols, ctrl, fe, params, options))
    params["origin"] = str(f.origin) if f.origin is not None else None
    return _wrap(f.out, f.keys, f.names, model, f.method, params, alpha, fit_name=f.fit_name)


def _checked_options(
    *,
    model: str,
    se: str | None,
    slope: str,
    fixed_effects: Sequence[str] | None,
    hac_lags: int | None,
    tau: str,
    alpha: float,
    events_per_param: float,
) -> str:
    """The resolved ``se``; :class:`UsageError` on an unknown model or option value."""
    if model not in MODELS:
        raise not_per_group(model) or UsageError(
            f"unknown model '{model}'; choose one of {', '.join(MODELS)}"
        )
    se = D.resolve_se(model, se, fixed_effects)
    if se not in SE_TYPES:
        raise UsageError(f"unknown se '{se}'; choose one of {', '.join(SE_TYPES)}")
    if slope not in ("item", "common"):
        raise UsageError(f"unknown slope '{slope}'; choose item or common")
    if se in ("HC3", "cluster") and (model in ("iv", "panel") or fixed_effects):
        raise UsageError(
            f"se '{se}' is available for models ols (without fixed effects), poisson "
            "and hierarchical"
        )
    if se == "HAC" and (model != "ols" or fixed_effects):
        raise UsageError("se 'HAC' is available for model 'ols' without fixed effects")
    if hac_lags is not None and (se != "HAC" or hac_lags < 0):
        raise UsageError("hac_lags needs se='HAC' and a value >= 0")
    if tau not in ("common", "level"):
        raise UsageError(f"unknown tau '{tau}'; choose common or level")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    if not events_per_param >= 0:
        raise UsageError(f"events_per_param must be >= 0, got {events_per_param}")
    return se


def _takes_instrument() -> str:
    return " or ".join(f"'{m}'" for m, fitter in FITTERS.items() if fitter.instrument)


def _last_date(df: pl.DataFrame) -> str | None:
    """The last week in the data (where :meth:`ElasticityResults.predict` holds the trend)."""
    if "date" not in df.columns:
        return None
    last = df["date"].max()
    return str(last) if isinstance(last, dt.date) else None


def _wrap(
    out: dict[str, np.ndarray],
    keys: pl.DataFrame,
    names: list[str],
    model: str,
    method: str,
    params: dict[str, Any],
    alpha: float,
    fit_name: str | None = None,
) -> ElasticityResults:
    flag_signs(out)
    from .robust import normal_quantile

    z = normal_quantile(1 - alpha / 2)
    e, s = out["elasticity"], out["std_error"]
    G = e.shape[0]
    table = pl.DataFrame(
        {
            "elasticity": e,
            "std_error": s,
            "ci_low": e - z * s,
            "ci_high": e + z * s,
            "n_obs": out["n_obs"],
            "method": pl.repeat(method, G, dtype=pl.String, eager=True),
            "n_zero": out["n_zero"],
            "price_variation": out["price_variation"],
            "fit_stat": out["fit_stat"],
            "fit_stat_name": pl.repeat(
                fit_name or FIT_STAT[method], G, dtype=pl.String, eager=True
            ),
            "first_stage_f": out["first_stage_f"],
            "first_stage_f_robust": out.get("first_stage_f_robust", np.full(G, np.nan)),
            "flags": flag_series(out["flags"]),
        },
        schema_overrides={"method": pl.String, "fit_stat_name": pl.String, "flags": pl.String},
    )
    lead = [c for c in ("item_id", "market") if c in keys.columns]
    if keys.width:
        table = pl.concat([keys, table], how="horizontal")
    for c in ("item_id", "market"):
        if c not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    other = [c for c in keys.columns if c not in lead]
    from .results import CONTRACT, DIAGNOSTICS

    table = table.select([*CONTRACT, *DIAGNOSTICS, *other])
    pframe = pl.DataFrame(
        {
            D.control_label(n) if n.startswith("_c_") else n: out["params"][:, j]
            for j, n in enumerate(names)
        }
    )
    pframe = pframe.with_columns(pl.Series("smearing", out["smearing"]))
    if keys.width:
        pframe = pl.concat([keys, pframe], how="horizontal")
    return ElasticityResults(table, pframe, model, params)


def fit_partition(frame: Any, spec: dict[str, Any]) -> Any:
    """Estimate every group held in one partition (e.g. for a Spark ``applyInPandas``).

    Parameters
    ----------
    frame:
        A pandas frame, Arrow table or polars frame holding *whole* groups (for
        ``hierarchical`` and ``panel``: whole pooling levels).
    spec:
        Keyword arguments of :func:`estimate` (``items`` may be included).

    Returns
    -------
    pandas.DataFrame, pyarrow.Table or polars.DataFrame
        The elasticities joined with the coefficients (prefixed ``b_``), in the input's
        frame type. :func:`~pricelab.elasticity.fit_groups` also moves the ``trend``
        origin to the whole data set's.

    Raises
    ------
    UsageError
        ``frame`` is not a table, or as :func:`estimate`.
    """
    kind = type(frame).__module__.split(".")[0]
    df = (
        pl.from_arrow(frame)
        if kind == "pyarrow"
        else (pl.from_pandas(frame) if kind == "pandas" else frame)
    )
    if not isinstance(df, pl.DataFrame):
        raise UsageError("fit_partition needs a table (pandas, Arrow or polars frame)")
    if "date" in df.columns and df.schema["date"] != pl.Date:
        df = df.with_columns(pl.col("date").cast(pl.Date))
    res = estimate(df, **spec)
    by = res.by
    p = res.params.rename({c: f"b_{c}" for c in res.params.columns if c not in by})
    out = (
        res.elasticities.join(p, on=by, how="left")
        if by
        else pl.concat([res.elasticities, p], how="horizontal")
    )
    if kind == "pandas":
        return out.to_pandas()
    if kind == "pyarrow":
        return out.to_arrow()
    return out
