"""A markdown plan: the week-by-week table, the per-item summary and the comparisons."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pricelab.markdown.fluid import FluidOutcome, fluid
from pricelab.markdown.problem import MarkdownProblem
from pricelab.markdown.solver import MarkdownSolution

RULE_PCT = 30.0
RULE_NAME = "30% off from mid-season"


def simple_rule_path(prob: MarkdownProblem) -> np.ndarray:
    """The simple rule: full price, then the deepest allowed step <= 30% from mid-season."""
    _, t_len, _ = prob.shape
    level = int(np.searchsorted(prob.ladder, RULE_PCT + 1e-9) - 1)
    lv = np.minimum(level, prob.n_levels() - 1)
    path = np.zeros((len(lv), t_len), dtype=np.int8)
    path[:, t_len // 2 :] = lv[:, None]
    return path


class MarkdownPlan:
    """Plan rows (item × market × week), per-item summary, totals and the proven gap."""

    def __init__(self, prob: MarkdownProblem, sol: MarkdownSolution) -> None:
        self.problem, self.solution = prob, sol
        bp = prob.base_price()
        zero = np.zeros_like(sol.path)
        self.keep_full: FluidOutcome = fluid(
            prob.demand, zero, prob.pool, prob.pool_stock, prob.pool_salvage, bp
        )
        self.rule: FluidOutcome = fluid(
            prob.demand, simple_rule_path(prob), prob.pool, prob.pool_stock, prob.pool_salvage, bp
        )
        self.table = self._table()
        self.items = self._items()

    def _table(self) -> pl.DataFrame:
        prob, sol = self.problem, self.solution
        r, t_len, _ = prob.shape
        path = sol.path.astype(np.intp)
        price = np.take_along_axis(prob.local_price(), path, axis=1)
        disc = prob.ladder[path]
        units = sol.outcome.sales
        left = sol.outcome.stock_left[prob.pool]
        nlev = prob.n_levels()
        cap = (path == (nlev - 1)[:, None]) & (nlev < prob.shape[2])[:, None]
        binding = np.where(left <= 1e-9, "stock", "")
        binding = np.where(
            cap,
            np.char.add(binding, np.where(binding == "", "max_discount_pct", ";max_discount_pct")),
            binding,
        )
        of_pool, _, _ = prob.targets()
        mu = np.zeros(len(prob.pool_stock))
        mu[of_pool >= 0] = sol.target_multiplier[of_pool[of_pool >= 0]]
        tgt = (mu[prob.pool] > 0)[:, None] & np.ones((1, t_len), dtype=bool)
        binding = np.where(
            tgt,
            np.char.add(
                binding, np.where(binding == "", "sell_through_min_pct", ";sell_through_min_pct")
            ),
            binding,
        )
        return pl.DataFrame(
            {
                "item_id": np.repeat(prob.item_id, t_len),
                "market": np.repeat(prob.market, t_len),
                "week": np.tile(np.arange(1, t_len + 1), r),
                # a shop price on the currency's minor unit when known (problem.shop_prices)
                "price": (price if prob.price_unit is not None else np.round(price, 2)).ravel(),
                "discount_pct": disc.ravel(),
                "expected_units": units.ravel(),
                "expected_revenue": (units * price).ravel(),
                "stock_left": left.ravel(),
                "binding": binding.ravel(),
            }
        )

    def _items(self) -> pl.DataFrame:
        prob, sol = self.problem, self.solution
        p = len(prob.pool_stock)
        first_md = np.where((sol.path > 0).any(axis=1), np.argmax(sol.path > 0, axis=1) + 1, 0)
        start = np.full(p, 10**6)
        np.minimum.at(start, prob.pool, np.where(first_md > 0, first_md, 10**6))
        cat = np.full(p, "", dtype=object)
        cat[prob.pool] = prob.category
        o, k, ru = sol.outcome, self.keep_full, self.rule
        stock = prob.pool_stock.astype(float)
        over = k.sold < stock * 0.999  # full price leaves stock behind
        return pl.DataFrame(
            {
                "item_id": prob.pool_item,
                "market": prob.pool_market,
                "category": cat.astype(str),
                "stock": stock,
                "expected_units": o.sold,
                "sell_through_pct": 100 * o.sold / np.maximum(stock, 1e-12),
                "revenue": o.revenue,
                "salvage_value": o.salvage,
                "value": o.value,
                "value_keep_full_price": k.value,
                "value_simple_rule": ru.value,
                "vs_keep_full_price": o.value - k.value,
                "vs_simple_rule": o.value - ru.value,
                "overstocked": over,
                "markdown_starts_week": start.astype(np.int64),
                "gap": sol.pool_gap.clip(min=0.0),
            }
        ).with_columns(
            pl.when(pl.col("markdown_starts_week") < 10**6).then(pl.col("markdown_starts_week"))
        )

    def to_dict(self) -> dict[str, Any]:
        """Totals, comparisons and the proven gap (JSON-able)."""
        sol = self.solution
        o, k, ru = sol.outcome, self.keep_full, self.rule
        stock = float(self.problem.pool_stock.sum())
        return {
            "items": int(self.items.height),
            "rows": int(self.problem.shape[0]),
            "weeks": int(self.problem.shape[1]),
            "stock": stock,
            "expected_units": float(o.sold.sum()),
            "sell_through_pct": 100 * float(o.sold.sum()) / max(stock, 1e-12),
            "revenue": float(o.revenue.sum()),
            "salvage_value": float(o.salvage.sum()),
            "value": sol.value,
            "upper_bound": sol.upper_bound,
            "gap": sol.gap,
            "value_keep_full_price": float(k.value.sum()),
            "value_simple_rule": float(ru.value.sum()),
            "simple_rule": RULE_NAME,
            "overstocked_items": int(self.items["overstocked"].sum()),
            "milp_pools": sol.milp_pools,
            "milp_time_limit": sol.milp_time_limit,
            "targets": [
                {"category": n, "min_units": float(u), "units": float(s), "multiplier": float(m)}
                for n, u, s, m in zip(
                    sol.target_names,
                    sol.target_units,
                    sol.target_sold,
                    sol.target_multiplier,
                    strict=True,
                )
            ],
        }

    def _milp_seconds(self) -> float:
        """The clock the exact MILP steps had: ``milp_seconds``, else the guard."""
        from pricelab.markdown.milp import GUARD_SECONDS

        sec = self.problem.config.milp_seconds
        return GUARD_SECONDS if sec is None else sec

    @property
    def summary(self) -> str:
        """One paragraph for people."""
        d = self.to_dict()
        return (
            f"markdown plan: {d['items']} stock pool(s), {d['rows']} item × market rows, "
            f"{d['weeks']} weeks; sells {d['expected_units']:.0f} of {d['stock']:.0f} units "
            f"({d['sell_through_pct']:.1f}%); revenue {d['revenue']:,.0f} + salvage "
            f"{d['salvage_value']:,.0f} = {d['value']:,.0f} (base currency), proven gap "
            f"{100 * d['gap']:.4f}%; vs keep full price {d['value'] - d['value_keep_full_price']:+,.0f}, "
            f"vs {RULE_NAME} {d['value'] - d['value_simple_rule']:+,.0f}"
            + (
                f" (the exact MILP steps stopped on the clock after "
                f"{self._milp_seconds():g} s: the gap is what was proven by then)"
                if d["milp_time_limit"]
                else ""
            )
        )
