"""Cross-price test cases shared by the cross-route tests: substitutes in a category, a
ladder of price points, brute force over every ladder plan, and the two-market case with
parity, a volume floor and an average-change budget (checked here from the raw data)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import polars as pl

from pricelab.demand.curves import CrossElasticity


def category(own=(-3.0, -2.5, -3.5), cross=0.8, markets=("US",), cost=55.0, seed=None):
    """Substitutes A, B, C in each market: every pair's cross elasticity ``cross``."""
    items = ["A", "B", "C"]
    rng = np.random.default_rng(seed)
    rows, pairs = [], []
    for m in markets:
        for k, i in enumerate(items):
            p0 = 100.0 if seed is None else float(rng.uniform(80, 120))
            rows.append(
                {
                    "item_id": i,
                    "market": m,
                    "elasticity": own[k],
                    "base_price": p0,
                    "base_quantity": 100.0 if seed is None else float(rng.uniform(50, 150)),
                    "unit_cost": cost if seed is None else float(rng.uniform(30, 60)),
                    "category": "bags",
                    "fx_rate": 1.0 if m == "US" else 1.2,
                }
            )
            for j in items:
                if i != j:
                    e = cross if seed is None else float(rng.uniform(0.1, 1.0))
                    pairs.append({"item_id": i, "market": m, "other_item_id": j, "elasticity": e})
    return pl.DataFrame(rows), pl.DataFrame(pairs)


def ladder(lo: float, hi: float, step: float) -> np.ndarray:
    return np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1) * step


def limits(demand, cons):
    """Each row's price floor (bounds, margin floor) and cap, from the raw table."""
    p0 = demand["base_price"].to_numpy()
    c = demand["unit_cost"].to_numpy()
    b = cons["bounds"]
    floor = c / (1 - cons.get("min_margin_pct", 0) / 100)
    return np.maximum(p0 * (1 - b["max_decrease_pct"] / 100), floor), p0 * (
        1 + b["max_increase_pct"] / 100
    )


def brute(demand, cross, cons, feasible, lo=None, hi=None):
    """Best profit over every combination of ladder prices that ``feasible`` accepts
    (within ``lo``/``hi`` per row when given, else the constraints' limits)."""
    curve = CrossElasticity.from_tables(demand, cross)
    c = demand["unit_cost"].to_numpy()
    fx = demand["fx_rate"].to_numpy()
    step = cons["ladder"]["step"]
    lo0, hi0 = limits(demand, cons)
    lo, hi = (lo0 if lo is None else lo), (hi0 if hi is None else hi)
    grids = [ladder(a, z, step) for a, z in zip(lo, hi, strict=True)]
    best, arg = -np.inf, None
    P = np.array(list(itertools.product(*grids)))
    Q = curve.quantity(P)
    V = (cons["horizon_weeks"] * (P - c) * Q / fx).sum(axis=1)
    for k in np.argsort(-V):
        if feasible(P[k], Q[k]):
            best, arg = V[k], P[k]
            break
    return best, arg


def brute_holds(demand, cross, cons, stocks):
    """Brute force over every ladder plan: the plan under ``stocks`` (``(rows, stock,
    whose)``: the rows' units over the horizon <= stock) and, per row, what holds its price.

    ``lo`` / ``hi``: the row sits on its floor / cap, or is one ladder step inside it and
    takes another point with that limit one step wider. A stock holds a row its units reach
    (its own rows: ``inventory``, a sibling: ``inventory of WHOSE``) when lifting it alone
    moves the row; ``inventory`` when only lifting every stock does. A limit and the stock
    hold a row together when lifting either alone leaves the price, lifting both moves it:
    both are named (the stock as above, on the limit's wider problem)."""
    step = cons["ladder"]["step"]
    lo, hi = limits(demand, cons)
    sibling = CrossElasticity.from_tables(demand, cross).matrix.toarray() != 0
    H = cons["horizon_weeks"]

    def best(skip=(), widen=None):
        l2, h2 = lo.copy(), hi.copy()
        if widen is not None:
            i, side = widen
            (h2 if side > 0 else l2)[i] += side * step
        kept = [(r, s) for k, (r, s, _) in enumerate(stocks) if k not in skip]
        ok = lambda _p, q: all(H * q[r].sum() <= s * (1 + 1e-12) for r, s in kept)  # noqa: E731
        return brute(demand, cross, cons, ok, l2, h2)[1]

    p = best()
    everything = tuple(range(len(stocks)))

    def stock_labels(i, widen=None):
        """Stocks that hold row ``i`` (with the limit ``widen`` one step wider)."""
        if np.isclose(best(everything, widen)[i], p[i], rtol=1e-9, atol=0.0):
            return set()
        out = set()
        for k, (rows, _, whose) in enumerate(stocks):
            reach = i in rows or sibling[rows, i].any()
            if reach and not np.isclose(best((k,), widen)[i], p[i], rtol=1e-9, atol=0.0):
                out.add("inventory" if i in rows else f"inventory of {whose}")
        return out or {"inventory"}

    want = []
    for i in range(p.size):
        held = stock_labels(i)
        reached = any(i in r or sibling[r, i].any() for r, _, _ in stocks)
        for side, limit in ((-1, lo[i]), (1, hi[i])):
            if abs(p[i] - limit) >= step * (1 - 1e-9):
                continue
            name = "lo" if side < 0 else "hi"
            alone = np.isclose(p[i], limit, rtol=1e-7) or not np.isclose(
                best(widen=(i, side))[i], p[i], rtol=1e-9, atol=0.0
            )
            if alone:
                held.add(name)
            elif reached and not any(x.startswith("inventory") for x in held):
                together = stock_labels(i, (i, side))
                held |= together | ({name} if together else set())
        want.append(held)
    return p, want


#: bounds, a margin floor and a ladder of 5s: small enough to brute-force
LADDER = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30},
    "min_margin_pct": 40,
    "ladder": {"step": 5},
}


#: the two-market case's limits: parity 8% per item, 90% of today's volume, a 6% average
#: price change, on a ladder of 5s within +-25%
TWO_MARKETS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 25, "max_decrease_pct": 25},
    "ladder": {"step": 5},
    "parity": {"max_gap_pct": 8},
    "min_volume_pct": 90,
    "max_avg_change_pct": 6,
}


def two_markets(std_error: list[float] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Items A and B in the US and GB (``category(seed=3)`` without C); ``std_error`` per
    row when the case needs elasticity draws."""
    demand, cross = category(markets=("US", "GB"), seed=3)
    demand = demand.filter(pl.col("item_id") != "C")
    if std_error is not None:
        demand = demand.with_columns(std_error=pl.Series(std_error))
    cross = cross.filter((pl.col("item_id") != "C") & (pl.col("other_item_id") != "C"))
    return demand, cross


def meets_two_markets(demand: pl.DataFrame, cross: pl.DataFrame) -> Callable[..., bool]:
    """``feasible(p, q=None)``: whether prices ``p`` meet :data:`TWO_MARKETS`' parity, volume
    floor and budget, recomputed from the tables (``q``: the plan's quantities, if known)."""
    fx, p0 = demand["fx_rate"].to_numpy(), demand["base_price"].to_numpy()
    q0, items = demand["base_quantity"].to_numpy(), demand["item_id"].to_numpy()
    curve = CrossElasticity.from_tables(demand, cross)
    w = p0 * q0 / fx
    w = w / w.sum()

    def feasible(p: np.ndarray, q: np.ndarray | None = None) -> bool:
        for it in ("A", "B"):
            b = p[items == it] / fx[items == it]
            if b.max() > 1.08 * b.min() * (1 + 1e-12):
                return False
        q = curve.quantity(p) if q is None else q
        return bool(q.sum() >= 0.9 * q0.sum() and abs(w @ (p / p0) - 1) <= 0.06 + 1e-12)

    return feasible
