"""Seasonality adjustment of the baseline with the estimate's own Fourier terms.

An estimate fitted with the ``fourier``/``fourier2`` controls stores, per group, the
coefficients ``sin1, cos1`` (and ``sin2, cos2``) of ``log`` expected units on
``sin(h * angle), cos(h * angle)`` with ``angle = 2 pi * day_of_year / 365.25`` (see
:func:`pricelab.elasticity.design.control_frame`). The seasonal level of a week is
``exp(s(date))``. The baseline window's average units are de-seasonalised with the
window's own weeks and re-seasonalised to the horizon weeks::

    units_adj = units_window * mean_horizon exp(s) / mean_window exp(s)

The multiplier is clipped to ``[0.5, 2]`` (per-group Fourier coefficients of sparse series
can be wild), and groups whose fit is flagged ``failed``, ``few_obs`` or ``no_sales`` keep
the plain average.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl

from pricelab.store import Store
from pricelab.store.runs import get_run

#: day-of-year period of the Fourier controls (``pricelab.elasticity.design.YEAR_DAYS``)
YEAR_DAYS = 365.25
CLIP = (0.5, 2.0)
MODES = ("auto", "off")


@dataclass
class SeasonalAdjustment:
    """Seasonal multipliers of the baseline units, one per baseline row (1.0: unchanged)."""

    factor: np.ndarray
    applied: bool
    terms: tuple[str, ...] = ()
    n_adjusted: int = 0
    n_clipped: int = 0
    n_flagged: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-able description (for run parameters and ``--json``)."""
        return {
            "applied": self.applied,
            "terms": list(self.terms),
            "adjusted_rows": self.n_adjusted,
            "clipped_rows": self.n_clipped,
            "flagged_rows": self.n_flagged,
            "clip": list(CLIP),
        }


def seasonal_terms(store: Store, run: str) -> tuple[tuple[str, ...], list[str]]:
    """The Fourier coefficient columns an estimate run stored, and its group columns.

    Empty when the run was fitted without ``fourier``/``fourier2`` or stored no
    ``elasticity_params``.
    """
    if not store.has_table("elasticity_params"):
        return (), []
    fit = get_run(store, run).get("parameters") or {}
    fit = fit.get("fit", fit) if isinstance(fit, dict) else {}
    controls = list(fit.get("controls") or [])
    harmonics = 2 if "fourier2" in controls else 1 if "fourier" in controls else 0
    have = set(store.query("SELECT * FROM elasticity_params LIMIT 0").columns)
    terms = tuple(t for h in range(1, harmonics + 1) for t in (f"sin{h}", f"cos{h}") if t in have)
    by = list(fit.get("by") or ["item_id", "market"])
    return terms, by


def _level(coef: np.ndarray, terms: tuple[str, ...], dates: list[dt.date]) -> np.ndarray:
    """Mean over ``dates`` of ``exp(s(date))`` for each row of coefficients ``(rows, terms)``."""
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    angle = 2 * np.pi * doy / YEAR_DAYS
    basis = np.stack(
        [
            np.sin(int(t[3:]) * angle) if t.startswith("sin") else np.cos(int(t[3:]) * angle)
            for t in terms
        ]
    )  # (terms, weeks)
    return np.exp(coef @ basis).mean(axis=1)


def seasonal_adjustment(
    store: Store,
    base: pl.DataFrame,
    *,
    weeks: int,
    horizon: int,
    estimates_run: str,
    mode: str = "auto",
    window: pl.DataFrame | None = None,
) -> SeasonalAdjustment:
    """Multipliers moving each baseline row's window-average units to the horizon's season.

    Parameters
    ----------
    store : Store
        The database (sales, ``elasticity_params`` and ``elasticities`` of the run).
    base : polars.DataFrame
        Baseline rows (``item_id, market``) from :func:`pricelab.simulate.baseline`.
    weeks, horizon : int
        Baseline window and horizon in weeks; the horizon weeks follow the newest sales date.
    estimates_run : str
        The estimate run whose Fourier coefficients are used.
    mode : {"auto", "off"}
        ``auto`` adjusts when the run has Fourier terms, ``off`` never does.
    window : polars.DataFrame, optional
        The baseline window's ``item_id, market, date`` rows when the history is not the
        store's ``sales`` table (e.g. aggregated by the Spark engine from ``--source``).

    Returns
    -------
    SeasonalAdjustment
        ``factor`` aligned with ``base`` (1.0 where no adjustment applies).
    """
    ones = np.ones(base.height)
    if mode == "off":
        return SeasonalAdjustment(ones, False)
    terms, by = seasonal_terms(store, estimates_run)
    if not terms:
        return SeasonalAdjustment(ones, False)
    if not set(by) <= {"item_id", "market"}:
        return SeasonalAdjustment(
            ones,
            False,
            terms,
            warnings=[
                f"seasonality: estimate run {estimates_run} is by {', '.join(by)}; the baseline "
                "is not seasonality-adjusted"
            ],
        )
    on = " AND ".join(f"p.{c} = w.{c}" for c in by) or "TRUE"
    coef = ", ".join(f"coalesce(any_value(p.{t}), 0)::DOUBLE AS {t}" for t in terms)
    s_expr = " + ".join(
        f"coalesce(p.{t}, 0) * {t[:3]}({t[3:]} * 2 * pi() * dayofyear(w.date) / {YEAR_DAYS})"
        for t in terms
    )
    has_flags = (
        store.has_table("elasticities")
        and "flags" in store.query("SELECT * FROM elasticities LIMIT 0").columns
    )
    flag_col = "any_value(e.flags) AS flags" if has_flags else "NULL::VARCHAR AS flags"
    e_on = " AND ".join(f"e.{c} = w.{c}" for c in by) or "TRUE"
    flag_join = (
        f"LEFT JOIN (SELECT * FROM elasticities WHERE run_id = ?) e ON {e_on}" if has_flags else ""
    )
    params: list[object] = [estimates_run]
    if window is not None:
        w_sql = "w AS (SELECT item_id, market, date FROM __pricelab_season_window)"
    else:
        w_sql = (
            "w AS (SELECT item_id, market, date FROM sales WHERE date > "
            "CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE))"
        )
        params.append(int(weeks))
    if has_flags:
        params.append(estimates_run)
    sql = f"""
    WITH p AS (SELECT * FROM elasticity_params WHERE run_id = ?),
    {w_sql}
    SELECT w.item_id, w.market, avg(exp({s_expr}))::DOUBLE AS window_level, {coef}, {flag_col}
    FROM w JOIN p ON {on} {flag_join}
    GROUP BY w.item_id, w.market
    """
    if window is not None:
        with store.registered(
            "__pricelab_season_window", window.select("item_id", "market", "date")
        ):
            got = store.query(sql, params)
        last = cast(dt.date, window["date"].max())
    else:
        got = store.query(sql, params)
        last = store.execute("SELECT max(date) FROM sales")[0][0]
    horizon_dates = [last + dt.timedelta(weeks=k) for k in range(1, horizon + 1)]
    rows = (
        base.select("item_id", "market")
        .with_row_index("_row")
        .join(got, on=["item_id", "market"], how="inner")
    )
    C = rows.select(terms).to_numpy().astype(float)
    raw = _level(C, terms, horizon_dates) / rows["window_level"].to_numpy()
    # imported here: the estimators' package costs a command that only simulates (and
    # has no seasonal terms to apply) 0.04-0.05 CPU s to import
    from pricelab.elasticity.results import UNFIT_FLAGS, has_any_flag

    bad = rows.select(has_any_flag(UNFIT_FLAGS)).to_series().to_numpy()
    usable = np.isfinite(raw) & ~bad
    clipped = np.clip(raw, *CLIP)
    factor = ones.copy()
    idx = rows["_row"].to_numpy()
    factor[idx[usable]] = clipped[usable]
    n_clip = int((usable & (clipped != raw)).sum())
    warn = []
    if n_clip:
        warn.append(
            f"seasonality: {n_clip} row(s) had a seasonal multiplier outside "
            f"[{CLIP[0]:g}, {CLIP[1]:g}] (clipped)"
        )
    return SeasonalAdjustment(factor, True, terms, int(usable.sum()), n_clip, int(bad.sum()), warn)
