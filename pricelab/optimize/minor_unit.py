"""Prices a shop can charge: every recommended price on its currency's minor unit.

The currency's minor unit (ISO 4217: JPY and KRW have none, BHD/KWD/OMR/JOD/TND three
decimals, most currencies two) is a constraint like a ladder. The currency comes from the
markets table in database mode (the base currency where a market has none) or from a
``currency`` column of a demand table; a demand table without one is solved as given. rows on a ladder keep its
points, frozen rows and rows in conflict keep their current price. Every other row takes
a multiple of its unit inside its own limits, ``ceil(lo)`` .. ``floor(hi)`` (or keeps its
current price when that scores better: the shop already charges it). Rows that nothing
couples take the better of the two units around the continuous optimum (profit is
unimodal, so that is the optimum on the grid); when parity, ordering or a linking
constraint couples rows, the candidate MILP chooses among those units so that every
constraint still holds. The plan's proven bound stays valid: the gap grows by the rounding.
"""

from __future__ import annotations

import numpy as np

from pricelab.optimize.candidates import STRICT_MARGIN, solve_milp
from pricelab.optimize.problem import Problem

#: ISO 4217 minor units that are not 2 (currency code -> decimals)
DECIMALS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip
DEFAULT_DECIMALS = 2
LOSS_TOL = 1e-5  # a rounded plan this close to the unrounded one ends the search
MAX_REACH_CELLS = 200_000  # rows x units either side searched by a wider rounding MILP


def decimals(currency: object) -> int:
    """Decimals of a currency's minor unit (2 when unknown or missing)."""
    if not isinstance(currency, str) or not currency.strip():
        return DEFAULT_DECIMALS
    return DECIMALS.get(currency.strip().upper(), DEFAULT_DECIMALS)


def units(prob: Problem) -> np.ndarray:
    """Each row's minor unit (0.01, 1, 0.001 ...); NaN where the price is not rounded
    (a ladder sets the price points, or the row is frozen at its current price)."""
    f = prob.frame
    if "currency" not in f.columns:  # a demand table that does not say: prices as solved
        return np.full(prob.n, np.nan)
    u = np.array([10.0 ** -decimals(c) for c in f["currency"].to_list()], dtype=float)
    return np.where(np.isnan(prob.ladder_spacing) & ~prob.frozen, u, np.nan)


def _grid(x: np.ndarray, u: np.ndarray, up: bool) -> np.ndarray:
    """``x`` to a multiple of ``u`` (up or down), robust to float noise (39.99 / 0.01)."""
    with np.errstate(invalid="ignore"):  # an open limit (inf) stays open
        k = x / u
        r = np.round(k)
        near = np.abs(k - r) <= 1e-9 * np.maximum(1.0, np.abs(k))
        k = np.where(near, r, np.ceil(k) if up else np.floor(k))
        return np.where(np.isfinite(x), np.round(k * u, 6), x)


def round_prices(prob: Problem, p: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, int]:
    """Prices on their minor unit meeting every constraint; and how many rows could not be
    rounded (no multiple of the unit inside the row's limits, or no rounded combination
    meets the coupling constraints: those keep the solver's price)."""
    u = units(prob)
    todo = ~np.isnan(u)
    if not todo.any():
        return p, 0
    uu = np.where(todo, u, 1.0)
    lo = np.where(todo, _grid(np.maximum(prob.lo, 0.0), uu, up=True), p)
    hi = np.where(todo, _grid(np.where(np.isfinite(prob.hi), prob.hi, np.inf), uu, up=False), p)
    room = todo & (lo <= hi)
    unrounded = int((todo & ~room).sum())
    coupled = bool(prob.links) or bool(prob.ordering) or bool((groups >= 0).any())
    P = _candidates(prob, p, uu, lo, hi, room, 1)
    valid = ~np.isnan(P)
    value = np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), -np.inf)
    best = P[np.arange(prob.n), np.argmax(value, axis=1)]
    if not coupled:
        return best, unrounded
    for r in (best, _inside_bands(prob, p, uu, lo, hi, room, groups)):
        if _holds(prob, r, groups):
            return r, unrounded
    target = float(prob.objective_value(p).sum())
    found, found_v = None, -np.inf
    for reach in (1, 4, 16):  # the candidate MILP on the units around each price
        if found is not None and (
            target - found_v <= LOSS_TOL * abs(target) or prob.n * reach > MAX_REACH_CELLS
        ):
            break  # close enough to the unrounded plan, or a wider search is too large
        P = _candidates(prob, p, uu, lo, hi, room, reach)
        valid = ~np.isnan(P)
        value = np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), 0.0)
        for margin in (STRICT_MARGIN, 0.0):  # narrowed first: HiGHS meets rows to ~1e-6
            res = solve_milp(
                prob,
                P,
                value,
                parity_groups=groups,
                parity_gap=np.nan_to_num(prob.parity_gap),
                time_limit=60.0,
                margin=margin,
            )
            ok = res.status != "infeasible" and not np.isnan(res.prices).any()
            if ok and _holds(prob, res.prices, groups):
                v = float(prob.objective_value(res.prices).sum())
                if v > found_v:
                    found, found_v = res.prices, v
                break
    if found is not None:
        return found, unrounded
    return p, int(todo.sum())


def on_units(prob: Problem, P: np.ndarray) -> np.ndarray:
    """A candidate matrix (n, K) on each row's minor unit: every candidate to the nearest
    unit inside the row's limits ``ceil(lo)`` .. ``floor(hi)``, repeats dropped, and the
    current price kept when it lies within the limits (the shop already charges it).

    Routes that choose among candidates (the expected-profit and CVaR MILP, the cross route)
    then return prices on the grid that meet every constraint by construction. Rows without
    a unit (ladder, frozen, no currency) and rows with no unit inside their limits keep
    their candidates (:func:`off_grid` counts them).
    """
    u = units(prob)
    todo = ~np.isnan(u)
    if not todo.any():
        return P
    uu = np.where(todo, u, 1.0)
    lo = _grid(np.maximum(prob.lo, 0.0), uu, up=True)
    hi = _grid(np.where(np.isfinite(prob.hi), prob.hi, np.inf), uu, up=False)
    room = todo & (lo <= hi)
    with np.errstate(invalid="ignore"):
        near = np.round(np.round(P / uu[:, None]) * uu[:, None], 6)
    S = np.where(room[:, None], np.clip(near, lo[:, None], hi[:, None]), P)
    cur = np.where(room & (prob.p0 >= prob.lo) & (prob.p0 <= prob.hi), prob.p0, np.nan)
    S = np.sort(np.column_stack([np.round(S, 9), cur]), axis=1)  # the current price exact
    S[:, 1:][S[:, 1:] == S[:, :-1]] = np.nan  # sorted: a repeat follows its twin
    S = np.sort(S, axis=1)
    return S[:, ~np.all(np.isnan(S), axis=0)]


def neighbours(prob: Problem, x: np.ndarray) -> np.ndarray:
    """(n, 2): the units just below and above ``x`` (``x`` itself on rows without a unit),
    so that a linear constraint met by ``x`` can be met by a choice between them."""
    u = units(prob)
    uu = np.where(np.isnan(u), 1.0, u)
    down, up = _grid(x, uu, up=False), _grid(x, uu, up=True)
    return np.where(np.isnan(u)[:, None], x[:, None], np.column_stack([down, up]))


def off_grid(prob: Problem, p: np.ndarray) -> np.ndarray:
    """Rows that should be on a minor unit but are not (nor at their current price)."""
    u = units(prob)
    with np.errstate(invalid="ignore"):
        k = p / np.where(np.isnan(u), 1.0, u)
        bad = np.abs(k - np.round(k)) > 1e-6 * np.maximum(1.0, np.abs(k))
    return ~np.isnan(u) & bad & ~np.isclose(p, prob.p0, rtol=1e-12, atol=0.0)


def _inside_bands(
    prob: Problem,
    p: np.ndarray,
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    room: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """Parity rows in the lower half of their item's band rounded up, the upper half down
    (the band can only narrow); other rows to the better neighbouring unit."""
    b = p / prob.fx
    m = groups >= 0
    better_up = prob.objective_value(_grid(p, u, True)) >= prob.objective_value(_grid(p, u, False))
    if not m.any():
        r = np.where(better_up, _grid(p, u, up=True), _grid(p, u, up=False))
        return np.where(room, np.clip(r, lo, hi), p)
    g = groups[m]
    ng = int(g.max()) + 1
    bmin, bmax = np.full(ng, np.inf), np.zeros(ng)
    np.minimum.at(bmin, g, b[m])
    np.maximum.at(bmax, g, b[m])
    low = np.zeros(prob.n, dtype=bool)
    low[m] = b[m] <= (bmin[g] + bmax[g]) / 2
    up = np.where(m, low, better_up)
    r = np.where(room, np.clip(np.where(up, _grid(p, u, True), _grid(p, u, False)), lo, hi), p)
    # the band's new floor, then the upper rows under (1 + gap) times it
    new_min = np.full(ng, np.inf)
    np.minimum.at(new_min, g, (r / prob.fx)[m])
    cap = np.full(prob.n, np.inf)
    cap[m] = (1 + np.nan_to_num(prob.parity_gap[m])) * new_min[g] * prob.fx[m]
    top = m & ~low & room
    r[top] = np.maximum(_grid(np.minimum(p[top], cap[top]), u[top], up=False), lo[top])
    return r


def _holds(prob: Problem, r: np.ndarray, groups: np.ndarray, tol: float = 1e-9) -> bool:
    """``r`` meets parity, ordering and every linking constraint (row limits hold already)."""
    m = groups >= 0
    if m.any():
        g = groups[m]
        b = r[m] / prob.fx[m]
        ng = int(g.max()) + 1
        bmin, bmax = np.full(ng, np.inf), np.zeros(ng)
        np.minimum.at(bmin, g, b)
        np.maximum.at(bmax, g, b)
        if (bmax[g] > bmin[g] * (1 + np.nan_to_num(prob.parity_gap[m])) * (1 + tol)).any():
            return False
    for lower, upper, f, _name in prob.ordering:
        if (r[upper] < f * r[lower] * (1 - tol)).any():
            return False
    return all(lk.holds(prob, r, tol) for lk in prob.links)


def _candidates(
    prob: Problem,
    p: np.ndarray,
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    room: np.ndarray,
    reach: int,
) -> np.ndarray:
    """Per row: the units from ``reach`` below to ``reach`` above ``p`` within [lo, hi], and
    the current price when it lies within the row's limits (NaN pads; unrounded rows: p)."""
    down, up = _grid(p, u, up=False), _grid(p, u, up=True)
    steps = [down - k * u for k in range(reach)] + [up + k * u for k in range(reach)]
    cols = [np.where(room & (c >= lo - 1e-9) & (c <= hi + 1e-9), c, np.nan) for c in steps]
    cols.append(np.where(room & (prob.p0 >= prob.lo) & (prob.p0 <= prob.hi), prob.p0, np.nan))
    P = np.column_stack(cols)
    P[:, 0] = np.where(room, np.clip(down, lo, hi), p)  # every row keeps one candidate
    P = np.round(P, 9)
    for k in range(1, P.shape[1]):  # drop repeats (a row's down == up on the grid)
        P[:, k] = np.where((P[:, :k] == P[:, k : k + 1]).any(axis=1), np.nan, P[:, k])
    return P
