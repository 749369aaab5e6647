"""A scenario's new prices and the constant-elasticity projection per baseline row.

The baseline rows come from :func:`pricelab.demand.baseline.baseline` (one definition for
optimize and simulate). A scenario changes prices row by row; the projected weekly units
are ``baseline_units * (new_price / baseline_price) ** elasticity``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

import numpy as np
import polars as pl

from pricelab.demand.curves import ConstantElasticity
from pricelab.errors import NotFoundError, UsageError
from pricelab.store import Store, latest_run
from pricelab.store.runs import resolve_estimates  # noqa: F401 - one rule for optimize, simulate, report

from .scenario import Change, Scenario

#: two-sided 90% interval: the 5% and 95% quantiles of a normal, norm.ppf(0.95)
Z90 = 1.6448536269514722


def resolve_plan(store: Store, ref: str) -> tuple[str, pl.DataFrame]:
    """The run id and plan rows (``item_id, market, current_price, recommended_price``) of ``ref``."""
    if ref == "latest":
        run = latest_run(store, "optimize")
        if run is None:
            raise NotFoundError(
                "plan_run: latest: no optimize run in the database; run 'pricelab optimize' first"
            )
    else:
        rows = store.execute("SELECT command FROM runs WHERE run_id = ?", [ref])
        if not rows:
            raise NotFoundError(f"plan_run {ref!r} not found; see 'pricelab runs list'")
        if rows[0][0] != "optimize":
            raise UsageError(f"plan_run {ref!r} is a '{rows[0][0]}' run, not an optimize run")
        run = ref
    if not store.has_table("plans"):
        raise NotFoundError(f"plan_run {ref!r}: the database holds no plans table")
    plan = store.query(
        "SELECT item_id, market, current_price, recommended_price FROM plans WHERE run_id = ?",
        [run],
    )
    return run, plan


class ChangeApplier:
    """Turns a scenario's changes into new prices for the baseline rows.

    Each filter is one vectorised membership test per column over the baseline keys (a
    row matches when every filtered column holds one of the listed values; a missing value
    matches nothing), evaluated in polars: the values are data, never SQL text.
    """

    def __init__(
        self,
        store: Store,
        base: pl.DataFrame,
        plans: dict[str, pl.DataFrame],
        *,
        tables: Collection[str] | None = None,
    ) -> None:
        self.store = store
        self.keys = base.select("item_id", "market", "category", "brand", "boutique_id")
        self.price = base["baseline_price"].to_numpy()
        self.plans = {ref: self._align(plan) for ref, plan in plans.items()}
        self._tables = tables
        self._known: set[str] | None = None  # looked up only when a filter names a market
        self._markets: list[str] | None = None
        self.warnings: list[str] = []

    @property
    def known(self) -> set[str]:
        """The markets of the baseline and of the markets table."""
        if self._known is None:
            known = set(self.keys["market"].unique().to_list())
            tables = self.store.table_names() if self._tables is None else self._tables
            if "markets" in tables:
                rows = self.store.execute("SELECT DISTINCT market FROM markets")
                known |= {r[0] for r in rows}
            self._known = known
        return self._known

    @property
    def markets(self) -> list[str]:
        """Every market of the sales history and the markets table (one scan of sales)."""
        if self._markets is None:
            rows = self.store.execute("SELECT DISTINCT market FROM sales")
            self._markets = sorted(self.known | {r[0] for r in rows})
        return self._markets

    def _is_market(self, market: str) -> bool:
        # baseline and markets table first; only a name outside both needs the sales scan
        return market in self.known or market in self.markets

    def _align(self, plan: pl.DataFrame) -> np.ndarray:
        joined = (
            self.keys.with_row_index("_row")
            .join(
                plan.select("item_id", "market", "recommended_price"),
                on=["item_id", "market"],
                how="left",
            )
            .sort("_row")
        )
        return joined["recommended_price"].to_numpy().astype(float)

    def _label(self, scenario: Scenario, j: int, change: Change) -> str:
        line = f", line {change.line}" if change.line else ""
        return f"scenario '{scenario.name}' change {j + 1}{line} (where {change.describe()})"

    def mask(self, scenario: Scenario, j: int, change: Change) -> np.ndarray:
        """Boolean mask of the baseline rows the change's filter selects."""
        for m in change.where.get("market", ()):
            if not self._is_market(m):
                close = difflib.get_close_matches(m, self.markets, n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"known markets: {', '.join(self.markets)}"
                )
                raise UsageError(
                    f"{self._label(scenario, j, change)}: unknown market '{m}'; {hint}"
                )
        if not change.where:
            return np.ones(self.keys.height, dtype=bool)
        conds = [
            pl.col(col).cast(pl.Utf8).is_in(list(vals)).fill_null(False)
            for col, vals in change.where.items()
        ]
        return self.keys.select(pl.all_horizontal(conds)).to_series().to_numpy().copy()

    def _no_match(self, scenario: Scenario, j: int, change: Change) -> str:
        hints = []
        for col, vals in change.where.items():
            known = set(self.keys[col].drop_nulls().unique().to_list())
            for v in vals:
                if v not in known:
                    close = difflib.get_close_matches(v, sorted(known), n=1)
                    hints.append(
                        f"no {col} '{v}' in the baseline"
                        + (f" (did you mean '{close[0]}'?)" if close else "")
                    )
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


def project_rows(base: pl.DataFrame, new_price: np.ndarray, horizon: int) -> pl.DataFrame:
    """``base`` with the point projection and per-row 90% intervals over ``horizon`` weeks.

    Units are ``H * q0 * (p1 / p0) ** e``. The interval is exact for the normal
    elasticity distribution ``N(e, std_error)``: units are monotone in ``e``, so their
    5% and 95% quantiles are the units at ``e -/+ Z90 * std_error``. Rows whose price does
    not change keep the baseline (whatever their elasticity); changed rows without a
    usable elasticity are null.

    Returns
    -------
    polars.DataFrame
        ``base`` plus ``scenario_price, changed, baseline_quantity, scenario_quantity,
        quantity_low, quantity_high, baseline_revenue, scenario_revenue, revenue_low,
        revenue_high, baseline_profit, scenario_profit, profit_low, profit_high`` (market
        currency, over the horizon). One lazy polars query, collected once; the interval
        factor ``exp(Z90 * std_error * log(p1 / p0))`` is computed once per row.
    """
    p0, p1, c = pl.col("baseline_price"), pl.col("scenario_price"), pl.col("unit_cost")
    q0, q, lo, hi, k = (
        pl.col(name)
        for name in (
            "baseline_quantity",
            "scenario_quantity",
            "quantity_low",
            "quantity_high",
            "_k",
        )
    )
    e = pl.col("elasticity").fill_nan(None)
    se = pl.col("std_error").fill_nan(0.0).fill_null(0.0)
    log_r = (p1 / p0).log()
    m = p1 - c
    df = base.with_columns(pl.Series("scenario_price", np.asarray(new_price, dtype=float)))
    return (
        df.lazy()
        .with_columns(
            (p1 != p0).alias("changed"),
            (pl.col("baseline_units") * horizon).alias("baseline_quantity"),
            (Z90 * se * log_r).exp().alias("_k"),  # units at e -/+ Z90 se: q / k and q * k
        )
        .with_columns(
            pl.when(pl.col("changed"))
            .then(ConstantElasticity(p0, q0, e).quantity(p1))
            .otherwise(q0)
            .alias("scenario_quantity"),
        )
        .with_columns(
            pl.min_horizontal(q / k, q * k).alias("quantity_low"),
            pl.max_horizontal(q / k, q * k).alias("quantity_high"),
        )
        .with_columns(
            (p0 * q0).alias("baseline_revenue"),
            (p1 * q).alias("scenario_revenue"),
            (p1 * lo).alias("revenue_low"),
            (p1 * hi).alias("revenue_high"),
            ((p0 - c) * q0).alias("baseline_profit"),
            (m * q).alias("scenario_profit"),
            pl.when(m >= 0).then(m * lo).otherwise(m * hi).alias("profit_low"),
            pl.when(m >= 0).then(m * hi).otherwise(m * lo).alias("profit_high"),
        )
        .drop("_k")
        .collect()
    )
