"""Rows whose interval is too wide to act on.

A recommended price is worth acting on when the plan's own evidence says it beats today's
price. Over the elasticity's 90% interval (``elasticity +/- 1.645 std_error``) the row's
objective change at the new price runs from ``uplift_low_pct`` to ``uplift_high_pct`` (the
change is monotone in the elasticity, so the interval's ends bound it). When that range
holds both a loss and a gain and the price moves, the data cannot tell whether the change
helps: the row is flagged ``too_wide`` and the summary says so in plain words.
"""

from __future__ import annotations

import numpy as np

from pricelab.demand.curves import ConstantElasticity
from pricelab.optimize.problem import Problem

Z90 = 1.6448536269514722  # two-sided 90%: norm.ppf(0.95)
MIN_MOVE_PCT = 0.5  # a price this close to today's is not a change to act on

#: the plan-table columns this module adds, with the value of a row it cannot judge
COLUMNS = {"uplift_low_pct": None, "uplift_high_pct": None, "too_wide": False}

TOO_WIDE = "interval too wide to act on"


def interval_columns(prob: Problem, p: np.ndarray) -> dict[str, np.ndarray]:
    """``uplift_low_pct``, ``uplift_high_pct`` (objective change in % of the row's baseline
    over the elasticity's 90% interval; NaN without a standard error) and ``too_wide``."""
    se = prob.frame["std_error"].cast(float).to_numpy() if prob.n else np.zeros(0)
    ok = np.isfinite(se) & (se > 0)
    ends = []
    base = ConstantElasticity(prob.p0, prob.q0, prob.e).margin_term(prob.p0, prob.cost)
    with np.errstate(divide="ignore", invalid="ignore"):
        for z in (-Z90, Z90):
            e = np.where(ok, prob.e + z * np.nan_to_num(se), prob.e)
            new = ConstantElasticity(prob.p0, prob.q0, e).margin_term(p, prob.cost)
            ends.append(np.where(ok & (base != 0), 100 * (new - base) / np.abs(base), np.nan))
    lo, hi = np.fmin(*ends), np.fmax(*ends)
    moved = np.abs(p / prob.p0 - 1) * 100 > MIN_MOVE_PCT
    too_wide = moved & (lo < 0) & (hi > 0)
    return {"uplift_low_pct": lo, "uplift_high_pct": hi, "too_wide": too_wide}


def describe(rows: list[dict]) -> str:
    """The summary line for rows flagged ``too_wide`` (``item_id, market, uplift_*``)."""
    first = ", ".join(
        f"{r['item_id']}/{r['market']} {r['uplift_low_pct']:+.0f}% to {r['uplift_high_pct']:+.0f}%"
        for r in rows[:3]
    )
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return (
        f"{len(rows)} row(s) with an {TOO_WIDE}: within the elasticity's 90% interval the "
        f"new price could lose or gain against today's ({first}{more}); test these prices "
        "(pricelab experiment design) before acting on them"
    )
