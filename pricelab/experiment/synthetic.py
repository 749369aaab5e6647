"""Synthetic units and weekly sales with a known price response (tests and demos).

Demand of unit ``i`` in week ``t`` is ``base_rate_i * exp(shock_t) *
(1 + pct_i / 100) ** elasticity_i`` units; quantities are Poisson draws around
it (negative binomial with ``dispersion``). The true effect of a cell on units is
therefore ``(1 + pct / 100) ** elasticity - 1``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl


def synthetic_units(n_items: int, markets: tuple[str, ...] = ("US", "GB", "DE"), *,
                    seed: int = 0, level_mean: float = 3.0, level_sd: float = 0.8,
                    categories: tuple[str, ...] = ("bags", "shoes", "ready-to-wear"),
                    ) -> pl.DataFrame:
    """Units (item x market) with attributes, current price, cost and true base rate.

    Parameters
    ----------
    n_items : int
        Number of items; each is sold in every market.
    markets : tuple of str
        Market codes.
    seed : int
        Random seed.
    level_mean, level_sd : float
        Mean weekly units per unit is lognormal: ``level_mean * exp(N(0, level_sd) -
        level_sd^2 / 2)``.
    categories : tuple of str
        Item categories (attribute for strata).

    Returns
    -------
    polars.DataFrame
        ``item_id, market, category, brand, current_price, unit_cost, base_rate``.
    """
    rng = np.random.default_rng(seed)
    items = [f"ITEM-{i:05d}" for i in range(n_items)]
    cat = rng.choice(list(categories), n_items)
    brand = rng.choice([f"brand-{b}" for b in range(5)], n_items)
    price = np.round(np.exp(rng.normal(6.0, 0.6, n_items)), 2)
    m = len(markets)
    level = level_mean * np.exp(rng.normal(0, level_sd, n_items * m) - level_sd**2 / 2)
    return pl.DataFrame({
        "item_id": np.repeat(items, m), "market": np.tile(list(markets), n_items),
        "category": np.repeat(cat, m), "brand": np.repeat(brand, m),
        "current_price": np.repeat(price, m), "unit_cost": np.round(np.repeat(price, m) * 0.45, 2),
        "base_rate": level,
    })


def week_starts(start: dt.date, weeks: int) -> list[dt.date]:
    """``weeks`` consecutive week-start dates from ``start``."""
    return [start + dt.timedelta(days=7 * k) for k in range(weeks)]


def synthetic_sales(units: pl.DataFrame, dates: list[dt.date], *, seed: int,
                    price_change_pct=None, elasticity=-1.5, week_sd: float = 0.1,
                    dispersion: float | None = None, base_rate=None) -> pl.DataFrame:
    """Weekly sales for ``units`` over ``dates`` at prices changed by ``price_change_pct``.

    Parameters
    ----------
    units : polars.DataFrame
        From :func:`synthetic_units` (``base_rate`` gives each unit's level).
    dates : list of date
        Week starts.
    seed : int
        Random seed (week shocks and quantities).
    price_change_pct : array-like, optional
        Percent price change per unit (row of ``units``); default none.
    elasticity : float or array-like
        True elasticity (scalar or per unit).
    week_sd : float
        Standard deviation of the common log week shocks.
    dispersion : float, optional
        Negative-binomial overdispersion (variance ``mu + dispersion * mu^2``).
    base_rate : array-like, optional
        Overrides ``units['base_rate']``.

    Returns
    -------
    polars.DataFrame
        ``item_id, market, date, price, quantity, unit_cost`` (every unit x week).
    """
    rng = np.random.default_rng(seed)
    n, t = units.height, len(dates)
    pct = np.zeros(n) if price_change_pct is None else np.asarray(price_change_pct, float)
    rate = units["base_rate"].to_numpy() if base_rate is None else np.asarray(base_rate, float)
    shock = np.exp(rng.normal(0, week_sd, t))
    lam = (rate * (1 + pct / 100) ** np.asarray(elasticity, float))[:, None] * shock[None, :]
    if dispersion:
        lam = lam * rng.gamma(1 / dispersion, dispersion, size=lam.shape)
    q = rng.poisson(lam)
    price = np.round(units["current_price"].to_numpy() * (1 + pct / 100), 2)
    return pl.DataFrame({
        "item_id": np.repeat(units["item_id"].to_numpy(), t),
        "market": np.repeat(units["market"].to_numpy(), t),
        "date": pl.Series(dates * n, dtype=pl.Date),
        "price": np.repeat(price, t), "quantity": q.ravel().astype(np.int64),
        "unit_cost": np.repeat(units["unit_cost"].to_numpy(), t),
    })
