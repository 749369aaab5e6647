"""``optimize``: the public entry point of the optimizer.

Own-price demand goes to :func:`pricelab.optimize.router.optimize_own_price` (a short
router over the solving routes in :mod:`pricelab.optimize.routes`); cross-price demand
to the cross route (:mod:`pricelab.optimize.cross`).
"""

from __future__ import annotations

import polars as pl

from pricelab.optimize.constraints import Constraints
from pricelab.optimize.cross import optimize_cross
from pricelab.optimize.plan import Plan
from pricelab.optimize.router import optimize_own_price


def optimize(
    demand: pl.DataFrame,
    constraints: str | dict | Constraints | None = None,
    *,
    draws: int | None = None,
    risk: str | None = None,
    seed: int = 0,
    strict: bool = False,
    n_grid: int = 25,
    time_limit: float = 600.0,
    cross: pl.DataFrame | None = None,
    conflicts: str = "raise",
    expected: bool = False,
) -> Plan:
    """Recommend a price per item x market.

    Parameters
    ----------
    demand : polars.DataFrame
        Contract demand table: item_id, market, elasticity, base_price, base_quantity,
        unit_cost, optional stock, stock_pool, fx_rate, category, std_error.
    constraints : path, dict, Constraints or None
        Contract constraints file (see :func:`load_constraints`).
    draws : int, optional
        Number of elasticity draws for the profit interval (P5-P95) of plan and baseline.
    risk : str, optional
        ``cvar:ALPHA``: maximise expected profit subject to CVaR_ALPHA(profit) >= the
        baseline's (candidate MILP over draws; with ``cross``, the combination MILP).
    seed : int
        Seed for the draws.
    strict : bool
        Raise :class:`DataError` on rows that would be skipped.
    n_grid : int
        Candidates per row when the MILP runs on rows without a ladder.
    time_limit : float
        MILP time limit in seconds (status ``time_limit`` with its gap when hit).
    cross : polars.DataFrame, optional
        Cross-price elasticities ``item_id, market, other_item_id, elasticity``: the
        substitutes are priced jointly by the cross route (:mod:`pricelab.optimize.cross`).
    conflicts : {"raise", "keep"}
        ``keep``: rows whose own constraints conflict stay at their current price with
        ``status`` ``conflict`` and the conflict in ``reason`` (a partial plan, see
        :mod:`pricelab.optimize.conflicts`); ``raise`` (default): InfeasibleError. With
        cross-price demand only a row's own conflicts are kept (conflicts between rows raise).
    expected : bool
        Plan on the expected profit over ``draws`` elasticity draws (default 200) from each
        row's ``std_error`` instead of on the point estimates (the candidate MILP; with
        ``cross``, the combination MILP, own elasticities drawn). Measured on the sample's known elasticities it does not beat the point
        plan (92.2% vs 92.4% of the oracle's uplift; with wide per-series intervals -16.5%
        vs -5.6%): ``benchmarks/oracle_capture.py`` and the README.

    Returns
    -------
    Plan

    Raises
    ------
    DataError, ConfigError, UsageError
        Bad input; InfeasibleError when no plan satisfies the constraints (message names
        rows and constraints); SolverError when the problem is unbounded or solvers fail.
    """
    if cross is not None:
        return optimize_cross(
            demand,
            cross,
            constraints,
            strict=strict,
            time_limit=time_limit,
            conflicts=conflicts,
            draws=draws,
            seed=seed,
            risk=risk,
            expected=expected,
        )
    return optimize_own_price(
        demand,
        constraints,
        draws=draws,
        risk=risk,
        seed=seed,
        strict=strict,
        n_grid=n_grid,
        time_limit=time_limit,
        conflicts=conflicts,
        expected=expected,
    )
