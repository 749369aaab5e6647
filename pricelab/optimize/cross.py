"""Category pricing under cross-price demand: the ``cross`` route of ``optimize``.

Demand ``q_i = q0_i prod_j (p_j / p0_j) ** e_ij`` (:class:`~pricelab.demand.curves.CrossElasticity`)
couples the items of a category within a market, and profit is not concave in prices, so
no convex formulation is exact. The route:

1. Blocks: the connected components of the cross matrix (the items that substitute, per
   market). Items without siblings are blocks of one.
2. Candidates per row: its ladder points, or a geometric grid plus its current price and
   own optimum (:func:`~pricelab.optimize.candidates.candidate_matrix`), inside the row's
   limits (bounds, margin floor, frozen).
3. A block with at most ``max_combos`` price combinations is enumerated: every combination's
   exact objective, units and prices. One MILP chooses a combination per block (HiGHS via
   ``scipy.optimize.milp``) under parity, volume floors, stock (pools and dedicated) and
   average-change budgets, all linear in the choice; without such constraints each block
   takes its best combination. **Exact on the candidate prices** (on the ladder when one is
   set); the MILP's proven gap is reported.
4. A larger block (refused when a linking constraint touches it) gets a best-response
   search over the candidates from two starts, and an upper bound from a concave relaxation
   in log-price space (each revenue term ``exp(a'u)`` replaced by its secant over the box,
   the cost terms ``-c q0 exp(b'u)`` kept: concave, solved by cvxpy). The relative gap to
   that bound is reported.

Every returned price is checked against every constraint with the cross demand
(:func:`violations`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import DataError, SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import implied_caps
from pricelab.optimize.binding import binding_labels
from pricelab.optimize.candidates import MIP_REL_GAP, candidate_matrix, search_window
from pricelab.optimize.constraints import load_constraints
from pricelab.optimize.decompose import Responder
from pricelab.optimize.plan import Plan
from pricelab.optimize.problem import Problem, build_problem
from pricelab.optimize.router import check_bounded, optimize_own_price

MAX_COMBOS = 250_000  # per block: enumerated exactly up to this many price combinations
MAX_TOTAL = 2_000_000  # over all blocks


def optimize_cross(
    demand: pl.DataFrame,
    cross: pl.DataFrame,
    constraints: Any = None,
    *,
    strict: bool = False,
    n_grid: int = 15,
    max_combos: int = MAX_COMBOS,
    time_limit: float = 600.0,
) -> Plan:
    """Joint price plan for substitutes (see the module docstring).

    Parameters
    ----------
    demand:
        Contract demand table (own ``elasticity`` per row).
    cross:
        ``item_id, market, other_item_id, elasticity``: the effect of ``other_item_id``'s
        price on ``item_id``'s units; a null/empty market applies in every market.
    constraints:
        As :func:`pricelab.optimize.optimize` (``ordering`` is not supported here).
    n_grid:
        Grid prices per row without a ladder.
    max_combos:
        Blocks with more price combinations than this use the bounded search.
    """
    for col in ("item_id", "market", "other_item_id", "elasticity"):
        if col not in cross.columns:
            raise DataError(f"cross table: missing column '{col}'")
    cons = load_constraints(constraints)
    prob = build_problem(demand, cons, strict=strict)
    if prob.n == 0:
        raise DataError(f"demand table: no row can be optimised ({prob.skipped.height} skipped)")
    if prob.ordering:
        raise UsageError("ordering constraints are not supported with cross-price demand")
    implied_caps(prob)
    check_bounded(prob)
    resp = Responder(prob)
    msgs = dg.row_conflicts(prob) + dg.parity_conflicts(prob, resp.groups)
    if msgs:
        dg.raise_infeasible(msgs)
    curve = CrossElasticity.from_tables(prob.frame, cross)
    P = candidate_matrix(prob, n_grid)
    msgs = dg.ladder_conflicts(prob, P)
    if msgs:
        dg.raise_infeasible(msgs)
    blocks = _blocks(curve)
    counts = (~np.isnan(P)).sum(axis=1)
    sizes = np.array([float(np.prod(counts[b].astype(float))) for b in blocks])
    small = sizes <= max_combos
    if sizes[small].sum() > MAX_TOTAL:
        small &= sizes <= max(1.0, MAX_TOTAL / max(1, small.sum()))
    links = _links(prob)
    linked = np.zeros(prob.n, bool)
    for _, rows, *_ in links:
        linked[rows] = True
    linked |= resp.groups >= 0
    for b, s, size in zip(blocks, small, sizes, strict=True):
        if not s and linked[b].any():
            raise UsageError(
                f"{prob.label(int(b[0]))}: its block of {b.size} substitutes has {size:.3g} "
                "price combinations, beyond the exact joint route; with parity, volume, "
                "stock or budget constraints on it use a coarser ladder, tighter bounds "
                "or a smaller category"
            )
    p = prob.p0.copy()
    enum = [_enumerate(prob, curve, P, counts, b) for b, s in zip(blocks, small, strict=True) if s]
    res = _choose(prob, enum, links, resp.groups, time_limit)
    for e, k in zip(enum, res["choice"], strict=True):
        p[e["rows"]] = e["prices"][k]
    big = [b for b, s in zip(blocks, small, strict=True) if not s]
    bound_big = obj_big = 0.0
    for b in big:
        p[b] = _best_response(prob, curve, P, counts, b)
        obj_big += float(_objective(prob, curve, p, b).sum())
        bound_big += relaxation_bound(
            prob, curve, b, incumbent=float(_objective(prob, curve, p, b).sum())
        )
    obj = float(_objective(prob, curve, p).sum())
    bad = violations(prob, curve, p, resp.groups, links)
    if bad:
        raise SolverError("cross-price plan violates: " + "; ".join(bad[:3]))
    bound = obj - obj_big + bound_big + res["bound_excess"]
    gap = max(0.0, (bound - obj) / max(abs(obj), 1e-12))
    n_comb = int(sizes[small].sum())
    form = (
        f"cross-price demand: {len(blocks)} block(s), {int(small.sum())} enumerated "
        f"({n_comb} price combinations)"
        + (f", {len(big)} by best-response search" if big else "")
        + ("; MILP over combinations (HiGHS)" if res["milp"] else "")
    )
    cert = "exact on the candidate prices (" + (
        "ladder points" if (~np.isnan(prob.ladder_spacing)).all() else f"{n_grid}-point grids"
    )
    cert += ")" + ("; HiGHS gap" if res["milp"] else "")
    if big:
        cert += "; large blocks: concave relaxation bound in log-price space (secant of exp)"
    tight = _tight_links(prob, curve, p, links)
    labels = binding_labels(prob, p, parity_groups=resp.groups, tight_links=tight, milp=True)
    base = float(_objective(prob, curve, prob.p0).sum())
    extra: dict[str, Any] = {"path": "cross", "blocks": len(blocks), "combinations": n_comb}
    single = _single_item_objective(demand, cons, prob, curve)
    if single is not None:
        extra["single_item_objective"] = single
        extra["single_item_share_of_joint"] = single / obj if obj else None
    return Plan(
        table=plan_table(prob, curve, p, labels),
        status=res["status"],
        formulation=form,
        objective_name=prob.objective,
        objective=obj,
        baseline_objective=base,
        gap=gap,
        certificate=cert,
        skipped=prob.skipped,
        extra=extra,
    )


def _blocks(curve: CrossElasticity) -> list[np.ndarray]:
    M = curve.matrix
    n_comp, lab = connected_components(M + M.T, directed=False)
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return list(np.split(order, cuts))


def _objective(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Per-row objective over the horizon (base currency) at the full price vector ``p``."""
    q = curve.quantity(p)
    v = prob.horizon * (p - prob.cost) * q / prob.fx
    return v if rows is None else v[rows]


def _links(prob: Problem) -> list[tuple[str, np.ndarray, str, float]]:
    """(name, rows, kind, value): the problem's linking rows plus dedicated stock per row."""
    out = [(lk.name, lk.rows, lk.key, lk.value) for lk in prob.links]
    stock = prob.sources["inventory"]
    for i in np.flatnonzero(~np.isnan(stock)):
        cap = float(prob.frame["stock"][int(i)])
        out.append((f"inventory ({prob.label(int(i))})", np.array([i]), "inventory", cap))
    return out


def _enumerate(
    prob: Problem, curve: CrossElasticity, P: np.ndarray, counts: np.ndarray, rows: np.ndarray
) -> dict[str, Any]:
    """Every price combination of one block: prices, weekly units and objective."""
    idx = np.indices(tuple(int(c) for c in counts[rows])).reshape(rows.size, -1).T
    prices = P[rows[None, :], idx]
    M = curve.matrix[rows][:, rows].toarray()
    x = np.log(prices / prob.p0[rows])
    q = prob.q0[rows] * np.exp(x @ M.T)
    value = (prob.horizon * (prices - prob.cost[rows]) * q / prob.fx[rows]).sum(axis=1)
    return {"rows": rows, "prices": prices, "q": q, "value": value}


def _choose(
    prob: Problem,
    enum: list[dict[str, Any]],
    links: list[tuple[str, np.ndarray, str, float]],
    groups: np.ndarray,
    time_limit: float,
) -> dict[str, Any]:
    """One combination per block: argmax, or the MILP when constraints link blocks."""
    if not links and not (groups >= 0).any():
        return {
            "choice": [int(np.argmax(e["value"])) for e in enum],
            "bound_excess": 0.0,
            "milp": False,
            "status": "optimal",
        }
    sizes = [e["value"].size for e in enum]
    off = np.cumsum([0, *sizes])
    nx = int(off[-1])
    where = np.full(prob.n, -1)
    slot = np.full(prob.n, -1)
    for b, e in enumerate(enum):
        where[e["rows"]] = b
        slot[e["rows"]] = np.arange(e["rows"].size)
    V = np.concatenate([e["value"] for e in enum])
    scale = max(float(np.median(np.abs(V))), 1e-12)
    ng = int(groups.max()) + 1 if (groups >= 0).any() else 0
    nvar = nx + ng
    A_rows: list[sp.csr_matrix] = []
    lb: list[float] = []
    ub: list[float] = []

    def coef(rows: np.ndarray, per: Any) -> sp.csr_matrix:
        """A constraint row summing ``per(block, local rows)`` over the combinations."""
        v = np.zeros(nvar)
        for b in np.unique(where[rows]):
            mine = rows[where[rows] == b]
            v[off[b] : off[b + 1]] += per(enum[b], slot[mine], mine)
        return sp.csr_matrix(v)

    one = sp.csr_matrix(
        (np.ones(nx), (np.repeat(np.arange(len(enum)), sizes), np.arange(nx))),
        shape=(len(enum), nvar),
    )
    A_rows.append(one)
    lb += [1.0] * len(enum)
    ub += [1.0] * len(enum)
    for _name, rows, kind, value in links:
        if kind == "min_volume_pct":
            need = value / 100 * prob.q0[rows].sum()
            A_rows.append(coef(rows, lambda e, s, m, t=need: e["q"][:, s].sum(axis=1) / t))
            lb.append(1.0)
            ub.append(np.inf)
        elif kind == "inventory":
            A_rows.append(
                coef(rows, lambda e, s, m, t=value: prob.horizon * e["q"][:, s].sum(axis=1) / t)
            )
            lb.append(-np.inf)
            ub.append(1.0)
        else:
            w = prob.p0[rows] * prob.q0[rows] / prob.fx[rows]
            wr = np.zeros(prob.n)
            wr[rows] = w / w.sum()
            A_rows.append(
                coef(
                    rows,
                    lambda e, s, m, w=wr: (e["prices"][:, s] * (w[m] / prob.p0[m])).sum(axis=1),
                )
            )
            lb.append(1 - value / 100)
            ub.append(1 + value / 100)
    for g in range(ng):
        rows = np.flatnonzero(groups == g)
        ref = float(np.mean(prob.p0[rows] / prob.fx[rows]))
        gap = float(np.nan_to_num(prob.parity_gap[rows[0]]))
        for r in rows:
            base = coef(
                np.array([r]), lambda e, s, m, f=ref: e["prices"][:, s[0]] / prob.fx[m[0]] / f
            )
            for mult, lo_, hi_ in ((-1.0, 0.0, np.inf), (-(1 + gap), -np.inf, 0.0)):
                row = base.toarray().ravel()
                row[nx + g] = mult
                A_rows.append(sp.csr_matrix(row))
                lb.append(lo_)
                ub.append(hi_)
    A = sp.vstack(A_rows).tocsr()
    c = np.zeros(nvar)
    c[:nx] = -V / scale
    integ = np.r_[np.ones(nx), np.zeros(ng)]
    vub = np.r_[np.ones(nx), np.full(ng, np.inf)]
    cons = LinearConstraint(A, np.array(lb), np.array(ub))
    opts = {"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "presolve": True}
    res = milp(c, constraints=cons, integrality=integ, bounds=Bounds(0, vub), options=opts)
    if res.status == 2 or res.x is None:
        if res.status == 2:
            dg.raise_infeasible(
                [
                    f"{name} cannot be met together with the other constraints under "
                    "cross-price demand"
                    for name, *_ in links
                ]
                or ["parity cannot be met on the candidate prices"]
            )
        raise SolverError(f"HiGHS MILP failed: {res.message}")
    choice = [int(np.argmax(res.x[off[b] : off[b + 1]])) for b in range(len(enum))]
    obj = -res.fun * scale
    dual = getattr(res, "mip_dual_bound", None)
    bound = -dual * scale if dual is not None else obj
    return {
        "choice": choice,
        "bound_excess": max(0.0, bound - obj),
        "milp": True,
        "status": "optimal" if res.status == 0 else "time_limit",
    }


def _best_response(
    prob: Problem, curve: CrossElasticity, P: np.ndarray, counts: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Coordinate ascent on the candidates from the current and the own-optimal prices."""
    Mc = curve.matrix.tocsc()
    best_p, best_v = None, -np.inf
    own = np.array(
        [_nearest(P[r, : counts[r]], x) for r, x in zip(rows, prob.p0[rows], strict=True)]
    )
    values = prob.objective_value(np.where(np.isnan(P), 1.0, P))
    start2 = P[rows, np.nanargmax(np.where(np.isnan(P[rows]), -np.inf, values[rows]), axis=1)]
    for start in (own, start2):
        p = prob.p0.copy()
        p[rows] = start
        for _ in range(100):
            moved = False
            for r in rows:
                col = Mc[:, r]
                s = col.indices
                cand = P[r, : counts[r]]
                q = curve.quantity(p)
                shift = np.exp(np.outer(np.log(cand / p[r]), col.data))  # (K, |s|)
                price = np.broadcast_to(p[s], shift.shape).copy()
                price[:, s == r] = cand[:, None]
                v = (prob.horizon * (price - prob.cost[s]) * q[s] * shift / prob.fx[s]).sum(axis=1)
                k = int(np.argmax(v))
                cur = float((prob.horizon * (p[s] - prob.cost[s]) * q[s] / prob.fx[s]).sum())
                if v[k] > cur * (1 + 1e-12) + 1e-12 and cand[k] != p[r]:
                    p[r] = cand[k]
                    moved = True
            if not moved:
                break
        val = float(_objective(prob, curve, p, rows).sum())
        if val > best_v:
            best_p, best_v = p[rows].copy(), val
    assert best_p is not None
    return best_p


def _nearest(cands: np.ndarray, x: float) -> float:
    return float(cands[np.argmin(np.abs(cands - x))])


def relaxation_bound(
    prob: Problem,
    curve: CrossElasticity,
    rows: np.ndarray,
    incumbent: float = -np.inf,
    max_nodes: int = 300,
    rtol: float = 1e-4,
) -> float:
    """Upper bound on a block's objective over its price window (log-price relaxation).

    With u = log(p / p0) in a box, revenue_i = p0 q0 exp(a_i'u) (a_i: row i of the matrix
    plus 1 on the diagonal) is convex in u: over the box it lies below its secant on the
    range [L_i, U_i] of a_i'u. The cost term -c q0 exp(b_i'u) is concave, so the relaxed
    objective f is concave; at any point x, f(x) + max over the box of grad f(x)'(u - x)
    bounds it from above (rigorously, however inexact the local solve). Boxes are split
    best-first on their widest coordinate until the bound is within ``rtol`` of
    ``incumbent`` or ``max_nodes`` boxes were solved; the largest open bound is returned.
    """
    import heapq

    lo, hi = search_window(prob)
    lo_b, hi_b = np.log(lo[rows] / prob.p0[rows]), np.log(hi[rows] / prob.p0[rows])
    B = curve.matrix[rows][:, rows].toarray()
    A = B + np.eye(rows.size)
    w = prob.horizon / prob.fx[rows]
    rev = w * prob.p0[rows] * prob.q0[rows]
    cost = w * prob.cost[rows] * prob.q0[rows]
    scale = max(float(rev.sum()), 1e-12)
    rev, cost = rev / scale, cost / scale

    def node(ulo: np.ndarray, uhi: np.ndarray) -> float:
        L = np.minimum(A * ulo, A * uhi).sum(axis=1)
        U = np.maximum(A * ulo, A * uhi).sum(axis=1)
        eL = np.exp(L)
        slope = np.where(U - L > 1e-12, (np.exp(U) - eL) / np.maximum(U - L, 1e-300), eL)

        def fg(u: np.ndarray) -> tuple[float, np.ndarray]:
            ec = cost * np.exp(B @ u)
            f = float(rev @ (eL + slope * (A @ u - L)) - ec.sum())
            return f, A.T @ (rev * slope) - B.T @ ec

        # projected gradient ascent with backtracking: any point gives a valid bound,
        # a better point a tighter one
        x = (ulo + uhi) / 2
        f, g = fg(x)
        step = 1.0
        for _ in range(200):
            xn = np.clip(x + step * g, ulo, uhi)
            fn, gn = fg(xn)
            if fn >= f + 1e-4 * float(g @ (xn - x)):
                moved = float(np.abs(xn - x).max())
                x, f, g, step = xn, fn, gn, step * 2.0
                if moved < 1e-10:
                    break
            else:
                step *= 0.5
                if step < 1e-14:
                    break
        return float(f + np.maximum(g * (ulo - x), g * (uhi - x)).sum())

    target = incumbent / scale
    heap = [(-node(lo_b, hi_b), 0, lo_b, hi_b)]
    count = 1
    while heap and count < max_nodes:
        nb, _, ulo, uhi = heap[0]
        if -nb <= target + rtol * abs(target):
            break
        heapq.heappop(heap)
        j = int(np.argmax(uhi - ulo))
        mid = (ulo[j] + uhi[j]) / 2
        for a_, b_ in ((ulo[j], mid), (mid, uhi[j])):
            lo2, hi2 = ulo.copy(), uhi.copy()
            lo2[j], hi2[j] = a_, b_
            count += 1
            heapq.heappush(heap, (-node(lo2, hi2), count, lo2, hi2))
    best = max(-heap[0][0], target) if heap else target
    return float(best) * scale * (1 + 1e-9)


def violations(
    prob: Problem,
    curve: CrossElasticity,
    p: np.ndarray,
    groups: np.ndarray,
    links: list[tuple[str, np.ndarray, str, float]],
    tol: float = 1e-7,
) -> list[str]:
    """Every constraint the prices break, evaluated with the cross demand (empty: none)."""
    out = []
    for i in np.flatnonzero(p < prob.lo * (1 - tol)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} below its floor {prob.lo[i]:.4f}")
    for i in np.flatnonzero(p > prob.hi * (1 + tol)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} above its cap {prob.hi[i]:.4f}")
    marg = prob.sources["min_margin_pct"]
    for i in np.flatnonzero(~np.isnan(marg) & (p < marg * (1 - tol)) & ~prob.frozen).tolist():
        out.append(f"{prob.label(i)} breaks min_margin_pct")
    lad = ~np.isnan(prob.ladder_spacing) & ~prob.frozen
    k = (p - prob.ladder_offset) / np.where(lad, prob.ladder_spacing, 1.0)
    for i in np.flatnonzero(lad & (np.abs(k - np.round(k)) > 1e-6)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} is off its ladder")
    for g in np.unique(groups[groups >= 0]):
        r = np.flatnonzero(groups == g)
        b = p[r] / prob.fx[r]
        if b.max() > (1 + float(prob.parity_gap[r[0]])) * b.min() * (1 + tol):
            out.append(f"parity of {prob.item[r[0]]}")
    q = curve.quantity(p)
    for name, rows, kind, value in links:
        if (
            kind == "min_volume_pct"
            and q[rows].sum() < value / 100 * prob.q0[rows].sum() * (1 - tol)
            or kind == "inventory"
            and prob.horizon * q[rows].sum() > value * (1 + tol)
        ):
            out.append(name)
        elif kind == "max_avg_change_pct":
            w = prob.p0[rows] * prob.q0[rows] / prob.fx[rows]
            avg = 100 * ((w / w.sum()) @ (p[rows] / prob.p0[rows]) - 1)
            if abs(avg) > value * (1 + tol) + 1e-9:
                out.append(name)
    return out


def _tight_links(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, links: list[Any]
) -> list[int]:
    q = curve.quantity(p)
    tight = []
    for j, lk in enumerate(prob.links):
        r = lk.rows
        if lk.key == "min_volume_pct":
            ok = q[r].sum() <= lk.value / 100 * prob.q0[r].sum() * (1 + 1e-6)
        elif lk.key == "inventory":
            ok = prob.horizon * q[r].sum() >= lk.value * (1 - 1e-6)
        else:
            ok = True
        if ok:
            tight.append(j)
    return tight


def plan_table(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, labels: list[str]
) -> pl.DataFrame:
    """The contract plan columns with the cross demand's quantities.

    ``cannibalised_quantity`` (over the horizon) is the part of a row's change in units
    that comes from its siblings' new prices: positive when siblings got dearer and sent
    buyers over, negative when a sibling's cut took buyers away.
    """
    h = prob.horizon
    q, q0 = h * curve.quantity(p), h * prob.q0
    return pl.DataFrame(
        {
            "item_id": prob.item.astype(str),
            "market": prob.market.astype(str),
            "category": prob.frame["category"],
            "fx_rate": prob.fx,
            "current_price": prob.p0,
            "recommended_price": p,
            "price_change_pct": 100 * (p / prob.p0 - 1),
            "expected_quantity": q,
            "expected_revenue": p * q,
            "expected_profit": (p - prob.c) * q,
            "baseline_quantity": q0,
            "baseline_revenue": prob.p0 * q0,
            "baseline_profit": (prob.p0 - prob.c) * q0,
            "binding": labels,
            "inelastic": prob.inelastic,
            "elasticity": prob.e,
            "cannibalised_quantity": h * curve.cannibalised(p),
        }
    )


def _single_item_objective(
    demand: pl.DataFrame, cons: Any, prob: Problem, curve: CrossElasticity
) -> float | None:
    """The objective, under the cross demand, of the plan that prices each item alone."""
    from pricelab.errors import PricelabError

    try:
        plan = optimize_own_price(demand, cons)
    except PricelabError:
        return None
    got = plan.table.select("item_id", "market", "recommended_price")
    keys = pl.DataFrame({"item_id": prob.item.astype(str), "market": prob.market.astype(str)})
    joined = keys.join(got, on=["item_id", "market"], how="left", maintain_order="left")
    p = joined["recommended_price"].to_numpy().astype(float)
    p = np.where(np.isnan(p), prob.p0, p)
    return float(_objective(prob, curve, p).sum())
