"""Baseline from history (in DuckDB) and the constant-elasticity projection per row.

The baseline per item × market is the average weekly units and the average weekly price
over the last ``baseline_weeks`` weeks of the sales history (the window ends at the newest
sales date), computed by one aggregation query. A scenario changes prices row by row; the
projected weekly units are ``baseline_units * (new_price / baseline_price) ** elasticity``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any

import numpy as np
import polars as pl

from pricelab.errors import NotFoundError, UsageError
from pricelab.store import Store, latest_run
from pricelab.store.runs import resolve_estimates  # noqa: F401 - one rule for optimize, simulate, report

from .scenario import Change, Scenario

#: two-sided 90% interval: the 5% and 95% quantiles of a normal, norm.ppf(0.95)
Z90 = 1.6448536269514722

BASELINE_SQL = """
SELECT s.item_id, s.market, avg(s.quantity)::DOUBLE AS baseline_units,
       avg(s.price)::DOUBLE AS baseline_price, avg(s.unit_cost)::DOUBLE AS sales_cost,
       count(*) AS n_weeks
FROM sales s
WHERE s.date > CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE)
GROUP BY s.item_id, s.market
"""

# "current": today's price (the last one in the window) and the window's weekly units moved
# to it with the elasticity, q_t (p_now / p_t)^e -- the optimizer's baseline.
CURRENT_SQL = """
SELECT w.item_id, w.market,
       avg(CASE WHEN isfinite(e.elasticity)
                THEN w.quantity * pow(c.current_price / w.price, e.elasticity)
                ELSE w.quantity END)::DOUBLE AS baseline_units,
       any_value(c.current_price)::DOUBLE AS baseline_price,
       avg(w.unit_cost)::DOUBLE AS sales_cost, count(*) AS n_weeks
FROM (SELECT * FROM sales
      WHERE date > CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE)) w
JOIN (SELECT item_id, market, arg_max(price, date) AS current_price FROM sales
      WHERE date > CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE)
      GROUP BY item_id, market) c ON c.item_id = w.item_id AND c.market = w.market
LEFT JOIN (SELECT item_id, market, elasticity FROM elasticities WHERE run_id = ?) e
       ON e.item_id = w.item_id AND e.market = w.market
GROUP BY w.item_id, w.market
"""

BASELINE_MODES = ("average", "current")
#: columns of an aggregated window passed to :func:`baseline` (what ``baseline_sql`` gives)
AGG_COLUMNS = ["item_id", "market", "baseline_units", "baseline_price", "sales_cost", "n_weeks"]
AGG_VIEW = "__pricelab_baseline_window"


def baseline_sql(mode: str = "average") -> str:
    """The aggregation query behind the baseline.

    ``average`` takes one parameter (weeks); ``current`` three (weeks, weeks, estimate run).
    """
    return BASELINE_SQL if mode == "average" else CURRENT_SQL


def baseline(store: Store, weeks: int, *, estimates_run: str | None = None,
             mode: str = "average", aggregated: pl.DataFrame | None = None,
             tables: Collection[str] | None = None) -> pl.DataFrame:
    """Baseline per item × market over the last ``weeks`` weeks of history.

    Parameters
    ----------
    store : Store
        An open pricelab database with sales loaded.
    weeks : int
        Length of the baseline window; it ends at the newest sales date.
    estimates_run : str, optional
        Run id of an ``estimate`` run whose ``elasticity, std_error`` are joined.
    mode : {"average", "current"}
        ``average``: average weekly units and average weekly price over the window.
        ``current``: the last price in the window, and the mean over the window of each
        week's units moved to that price with the elasticity (needs ``estimates_run``);
        this is the optimizer's baseline, so applying a plan reproduces its quantities.
    aggregated : polars.DataFrame, optional
        The window already aggregated elsewhere (``item_id, market, baseline_units,
        baseline_price, sales_cost, n_weeks``: what :func:`baseline_sql` computes, e.g. by
        the Spark engine from a large history); the store's sales are then not read.
    tables : collection of str, optional
        The store's table names when the caller has them already (saves a catalog query).

    Returns
    -------
    polars.DataFrame
        ``item_id, market, category, brand, boutique_id, fx_rate, baseline_units`` (weekly),
        ``baseline_price`` (market currency), ``unit_cost`` (market currency: the market's
        landed cost, else the item's cost, else the average ``sales.unit_cost`` of the window,
        times ``fx_rate``), ``n_weeks`` and, with ``estimates_run``, ``elasticity,
        std_error``. Sorted by item and market.
    """
    if mode not in BASELINE_MODES:
        raise UsageError(f"unknown baseline mode '{mode}'; choose average or current")
    if mode == "current" and estimates_run is None:
        raise UsageError("baseline mode 'current' needs an estimate run")
    has = set(store.table_names()) if tables is None else set(tables)
    items = ("LEFT JOIN items i ON i.item_id = b.item_id" if "items" in has else "")
    cat = "i.category, i.brand, i.boutique_id" if items else \
        "NULL::VARCHAR AS category, NULL::VARCHAR AS brand, NULL::VARCHAR AS boutique_id"
    params: list[Any] = [] if aggregated is not None else [int(weeks)]
    if mode == "current" and aggregated is None:
        params += [int(weeks), estimates_run]
    est_join, est_cols = "", ""
    if estimates_run is not None:
        est_join = ("LEFT JOIN (SELECT item_id, market, elasticity, std_error FROM elasticities "
                    "WHERE run_id = ?) e ON e.item_id = b.item_id AND e.market = b.market")
        est_cols = ", e.elasticity::DOUBLE AS elasticity, e.std_error::DOUBLE AS std_error"
        params.append(estimates_run)
    # one query: window aggregate and joins; the rows are sorted in polars (cheaper than
    # ORDER BY in DuckDB), so the order is deterministic whatever DuckDB's threads do
    sql = f"""
    WITH b AS ({baseline_sql(mode) if aggregated is None else f"SELECT * FROM {AGG_VIEW}"})
    SELECT b.item_id, b.market, {cat}, coalesce(m.fx_rate, 1.0) AS fx_rate,
           b.baseline_units, b.baseline_price,
           coalesce(cm.unit_cost, cg.unit_cost, b.sales_cost) * coalesce(m.fx_rate, 1.0)
               AS unit_cost,
           b.n_weeks {est_cols}
    FROM b {items}
    LEFT JOIN markets m ON m.market = b.market
    LEFT JOIN costs cm ON cm.item_id = b.item_id AND cm.market = b.market
    LEFT JOIN costs cg ON cg.item_id = b.item_id AND coalesce(cg.market, '') = ''
    {est_join}
    """
    if aggregated is None:
        return _sorted(store, sql, params)
    with store.registered(AGG_VIEW, aggregated.select(AGG_COLUMNS)):
        return _sorted(store, sql, params)


def _sorted(store: Store, sql: str, params: list[Any]) -> pl.DataFrame:
    """Rows of ``sql`` fetched once as Arrow, sorted by item and market (nulls last).

    Two stable single-key sorts give the order of one two-key sort, faster in polars.
    """
    df = pl.from_arrow(store.con.sql(sql, params=params).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df.sort("market", nulls_last=True) \
        .sort("item_id", nulls_last=True, maintain_order=True)


def resolve_plan(store: Store, ref: str) -> tuple[str, pl.DataFrame]:
    """The run id and plan rows (``item_id, market, current_price, recommended_price``) of ``ref``."""
    if ref == "latest":
        run = latest_run(store, "optimize")
        if run is None:
            raise NotFoundError("plan_run: latest: no optimize run in the database; "
                                "run 'pricelab optimize' first")
    else:
        rows = store.execute("SELECT command FROM runs WHERE run_id = ?", [ref])
        if not rows:
            raise NotFoundError(f"plan_run {ref!r} not found; see 'pricelab runs list'")
        if rows[0][0] != "optimize":
            raise UsageError(f"plan_run {ref!r} is a '{rows[0][0]}' run, not an optimize run")
        run = ref
    if not store.has_table("plans"):
        raise NotFoundError(f"plan_run {ref!r}: the database holds no plans table")
    plan = store.query("SELECT item_id, market, current_price, recommended_price FROM plans "
                       "WHERE run_id = ?", [run])
    return run, plan


class ChangeApplier:
    """Turns a scenario's changes into new prices for the baseline rows.

    Each filter is one vectorised membership test per column over the baseline keys (a
    row matches when every filtered column holds one of the listed values; a missing value
    matches nothing), evaluated in polars: the values are data, never SQL text.
    """

    def __init__(self, store: Store, base: pl.DataFrame, plans: dict[str, pl.DataFrame], *,
                 tables: Collection[str] | None = None) -> None:
        self.store = store
        self.keys = base.select("item_id", "market", "category", "brand", "boutique_id") \
            .with_row_index("_row")
        self.price = base["baseline_price"].to_numpy()
        self.plans = {ref: self._align(plan) for ref, plan in plans.items()}
        known = set(base["market"].unique().to_list())
        if "markets" in (store.table_names() if tables is None else tables):
            known |= {r[0] for r in store.execute("SELECT DISTINCT market FROM markets")}
        self._known = known
        self._markets: list[str] | None = None
        self.warnings: list[str] = []

    @property
    def markets(self) -> list[str]:
        """Every market of the sales history and the markets table (one scan of sales)."""
        if self._markets is None:
            rows = self.store.execute("SELECT DISTINCT market FROM sales")
            self._markets = sorted(self._known | {r[0] for r in rows})
        return self._markets

    def _is_market(self, market: str) -> bool:
        # baseline and markets table first; only a name outside both needs the sales scan
        return market in self._known or market in self.markets

    def _align(self, plan: pl.DataFrame) -> np.ndarray:
        joined = self.keys.join(plan.select("item_id", "market", "recommended_price"),
                                on=["item_id", "market"], how="left").sort("_row")
        return joined["recommended_price"].to_numpy().astype(float)

    def _label(self, scenario: Scenario, j: int, change: Change) -> str:
        line = f", line {change.line}" if change.line else ""
        return f"scenario '{scenario.name}' change {j + 1}{line} (where {change.describe()})"

    def mask(self, scenario: Scenario, j: int, change: Change) -> np.ndarray:
        """Boolean mask of the baseline rows the change's filter selects."""
        for m in change.where.get("market", ()):
            if not self._is_market(m):
                close = difflib.get_close_matches(m, self.markets, n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"known markets: {', '.join(self.markets)}"
                raise UsageError(f"{self._label(scenario, j, change)}: unknown market '{m}'; "
                                 f"{hint}")
        if not change.where:
            return np.ones(self.keys.height, dtype=bool)
        conds = [pl.col(col).cast(pl.Utf8).is_in(list(vals)).fill_null(False)
                 for col, vals in change.where.items()]
        return self.keys.select(pl.all_horizontal(conds)).to_series().to_numpy().copy()

    def _no_match(self, scenario: Scenario, j: int, change: Change) -> str:
        hints = []
        for col, vals in change.where.items():
            known = set(self.keys[col].drop_nulls().unique().to_list())
            for v in vals:
                if v not in known:
                    close = difflib.get_close_matches(v, sorted(known), n=1)
                    hints.append(f"no {col} '{v}' in the baseline"
                                 + (f" (did you mean '{close[0]}'?)" if close else ""))
        extra = "; " + "; ".join(hints) if hints else ""
        return f"{self._label(scenario, j, change)} matches no item × market{extra}"

    def prices(self, scenario: Scenario) -> np.ndarray:
        """New price per baseline row (later changes override earlier ones)."""
        new = self.price.copy()
        for j, change in enumerate(scenario.changes):
            m = self.mask(scenario, j, change)
            if change.action == "price_change_pct":
                vals = self.price * (1.0 + float(change.value) / 100.0)
            elif change.action == "price":
                vals = np.full(self.price.shape, float(change.value))
            else:
                vals = self.plans[str(change.value)]
                m &= ~np.isnan(vals)
            if not m.any():
                self.warnings.append(self._no_match(scenario, j, change))
            new[m] = vals[m]
        return new


def project_rows(base: pl.DataFrame, new_price: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """Point projection and per-row 90% intervals over ``horizon`` weeks.

    Units are ``H * q0 * (p1 / p0) ** e``. The interval is exact for the normal
    elasticity distribution ``N(e, std_error)``: units are monotone in ``e``, so their
    5% and 95% quantiles are the units at ``e -/+ Z90 * std_error``. Rows whose price does
    not change keep the baseline (whatever their elasticity); changed rows without a
    usable elasticity are NaN.
    """
    q0 = base["baseline_units"].to_numpy().astype(float) * horizon
    p0 = base["baseline_price"].to_numpy().astype(float)
    c = base["unit_cost"].to_numpy().astype(float)
    e = base["elasticity"].to_numpy().astype(float)
    se = np.nan_to_num(base["std_error"].to_numpy().astype(float), nan=0.0)
    p1 = np.asarray(new_price, dtype=float)
    changed = p1 != p0
    log_r = np.log(p1 / p0)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.where(changed, q0 * np.exp(e * log_r), q0)
        qa = np.where(changed, q0 * np.exp((e - Z90 * se) * log_r), q0)
        qb = np.where(changed, q0 * np.exp((e + Z90 * se) * log_r), q0)
    q_lo, q_hi = np.fmin(qa, qb), np.fmax(qa, qb)
    q_lo[np.isnan(q)] = np.nan
    q_hi[np.isnan(q)] = np.nan
    m = p1 - c
    return {
        "scenario_price": p1, "changed": changed, "baseline_quantity": q0,
        "scenario_quantity": q, "quantity_low": q_lo, "quantity_high": q_hi,
        "baseline_revenue": p0 * q0, "scenario_revenue": p1 * q,
        "revenue_low": p1 * q_lo, "revenue_high": p1 * q_hi,
        "baseline_profit": (p0 - c) * q0, "scenario_profit": m * q,
        "profit_low": np.where(m >= 0, m * q_lo, m * q_hi),
        "profit_high": np.where(m >= 0, m * q_hi, m * q_lo),
    }
