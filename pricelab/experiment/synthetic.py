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


def synthetic_units(
    n_items: int,
    markets: tuple[str, ...] = ("US", "GB", "DE"),
    *,
    seed: int = 0,
    level_mean: float = 3.0,
    level_sd: float = 0.8,
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
    return pl.DataFrame(
        {
            "item_id": np.repeat(items, m),
            "market": np.tile(list(markets), n_items),
            "category": np.repeat(cat, m),
            "brand": np.repeat(brand, m),
            "current_price": np.repeat(price, m),
            "unit_cost": np.round(np.repeat(price, m) * 0.45, 2),
            "base_rate": level,
        }
    )


def week_starts(start: dt.date, weeks: int) -> list[dt.date]:
    """``weeks`` consecutive week-start dates from ``start``."""
    return [start + dt.timedelta(days=7 * k) for k in range(weeks)]


def synthetic_sales(
    units: pl.DataFrame,
    dates: list[dt.date],
    *,
    seed: int,
    price_change_pct=None,
    elasticity=-1.5,
    week_sd: float = 0.1,
    dispersion: float | None = None,
    base_rate=None,
) -> pl.DataFrame:
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
    return pl.DataFrame(
        {
            "item_id": np.repeat(units["item_id"].to_numpy(), t),
            "market": np.repeat(units["market"].to_numpy(), t),
            "date": pl.Series(dates * n, dtype=pl.Date),
            "price": np.repeat(price, t),
            "quantity": q.ravel().astype(np.int64),
            "unit_cost": np.repeat(units["unit_cost"].to_numpy(), t),
        }
    )


def synthetic_experiment(
    n_items: int = 60,
    markets: tuple[str, ...] = ("US", "GB"),
    *,
    cells: tuple[float, ...] = (-10.0, 0.0, 10.0),
    pre_weeks: int = 8,
    test_weeks: int = 4,
    elasticity=-1.5,
    seed: int = 0,
    unit: str = "item-market",
    stratify: tuple[str, ...] = ("category",),
    dispersion: float | None = None,
    start: dt.date = dt.date(2024, 1, 1),
    level_sd: float = 0.8,
):
    """A designed experiment with simulated pre-period and test-window sales.

    Parameters
    ----------
    n_items, markets : int, tuple of str
        Units are every item in every market.
    cells, pre_weeks, test_weeks, unit, stratify
        Passed to :func:`~pricelab.experiment.design_experiment`.
    elasticity : float
        True elasticity of every unit.
    seed : int
        Seeds units (``seed``), history (``seed + 1``), design (``seed + 2``)
        and test sales (``seed + 3``).
    dispersion, level_sd : float
        Overdispersion of weekly units and spread of unit levels.
    start : date
        First pre-period week (a Monday).

    Returns
    -------
    tuple
        ``(design, history, test_sales, units)`` with ``units`` holding the
        true ``base_rate``.
    """
    from pricelab.experiment.design import design_experiment

    units = synthetic_units(n_items, markets, seed=seed, level_sd=level_sd)
    history = synthetic_sales(
        units, week_starts(start, pre_weeks), seed=seed + 1, dispersion=dispersion
    )
    design = design_experiment(
        units.drop("base_rate"),
        history,
        name=f"sim-{seed}",
        cells=list(cells),
        unit=unit,
        stratify=list(stratify),
        weeks=test_weeks,
        seed=seed + 2,
    )
    pct = units.join(
        design.assignment.select("item_id", "market", "price_change_pct"),
        on=["item_id", "market"],
        how="left",
        maintain_order="left",
    )
    test = synthetic_sales(
        units,
        week_starts(design.start, test_weeks),
        seed=seed + 3,
        price_change_pct=pct["price_change_pct"].to_numpy(),
        elasticity=elasticity,
        dispersion=dispersion,
    )
    return design, history, test, units
