"""Exact per-pool markdown MILP (HiGHS through scipy), for pools the Lagrangian leaves open.

Variables per row r, week t, level k: ``z`` (binary: the row is at level k in week t) and
``x`` (units sold there, at most the demand there and zero unless z is on); per row and week
``c`` (binary: the price changes) when ``min_weeks_between_changes`` > 1. A pool's units sold
are at most its stock. This is the same model as the Lagrangian's (units allocated where
worth most), so HiGHS's bound is a bound on the plan. Pools are batched into one
block-diagonal MILP per batch.

Two repairs use this model; both are needed. :func:`improve_with_milp` runs inside the core
solve on the pools whose own Lagrangian gap is open: batches of 16 pools (a category
target's whole group at once up to ``JOINT_ROWS`` rows, with the target as a floor; else
each pool keeps its units sold), and each batch's dual bound replaces those pools' bounds,
so it tightens the proven bound as well as the plan, over every open pool of a problem of
any size. It sees stock pools and category targets only.
:func:`pricelab.markdown.targets.repair_swing` runs after a search on the targets'
multipliers: one MILP over the pools whose plan flips between nearby multipliers, with
every target (market targets cover pools of every category, which no batch here sees)
and the other pools' sales held; it improves the plan, not the bound (the rest is held),
and is capped at ``REPAIR_CELLS``. Neither does the other's job: with the pools' MILP off,
a plan without targets keeps its Lagrangian gap (``tests/test_markdown_milp_budget.py``'s
seed 7: the same plan, but a proven gap of 4.3e-4 instead of 5e-11);
with the swing repair off, market targets rest on the whole-problem MILP, which only
problems up to ``EXACT_CELLS`` get (the s12 case of
``test_market_met_alone_is_priced_when_another_pushes_it_out``: 1.2e-2 left for it
instead of 1.1e-3).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import numpy as np

from pricelab.markdown.fluid import fluid
from pricelab.markdown.problem import MarkdownProblem

BATCH_POOLS = 16
JOINT_ROWS = 240  # a target group this small is solved as one MILP with its target

#: wall-clock guard shared by every MILP of one run when the constraints file sets no
#: ``milp_seconds``: far above any solve seen (the slowest markdown test's MILPs, 9 CPU s
#: quiet, stopped at the old 60 s default under load 20+). The node limits (``milp_nodes``,
#: ``targets.REPAIR_NODES`` / ``EXACT_NODES``) are what bound a search, so a loaded machine
#: returns the plan a quiet one does.
GUARD_SECONDS = 900.0

# The wall-clock deadline shared by every MILP of one markdown run and whether a MILP
# stopped at it.
_DEADLINE: ContextVar[float | None] = ContextVar("markdown_milp_deadline", default=None)
_STOPPED: ContextVar[list[bool] | None] = ContextVar("markdown_milp_stopped", default=None)


@contextmanager
def milp_budget(seconds: float | None) -> Iterator[list[bool]]:
    """Every MILP inside shares ``seconds`` of wall clock (None: the ``GUARD_SECONDS``
    guard; an enclosing budget's deadline is kept when it is earlier). Yields a one-item
    list that turns True when a MILP stopped at the deadline (the plan is then the best
    found and its gap what was proven)."""
    seconds = GUARD_SECONDS if seconds is None else seconds
    outer = _DEADLINE.get()
    mine = time.monotonic() + seconds
    deadline = mine if outer is None else min(outer, mine)
    stopped = _STOPPED.get()
    flag = stopped if stopped is not None else [False]
    tokens = (_DEADLINE.set(deadline), _STOPPED.set(flag))
    try:
        yield flag
    finally:
        _DEADLINE.reset(tokens[0])
        _STOPPED.reset(tokens[1])


def _mark_stopped() -> None:
    flag = _STOPPED.get()
    if flag is not None:
        flag[0] = True


class _Builder:
    """COO triplets and row bounds of a linear constraint system."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lb: list[np.ndarray] = []
        self.ub: list[np.ndarray] = []
        self.n = 0

    def add(self, cols: np.ndarray, vals: Any, lb: Any, ub: Any) -> None:
        """One constraint per row of ``cols`` (2-D, same shape as ``vals``)."""
        cols = np.atleast_2d(cols)
        vals = np.broadcast_to(vals, cols.shape)
        k = cols.shape[0]
        self.rows.append(np.repeat(np.arange(self.n, self.n + k), cols.shape[1]))
        self.cols.append(cols.ravel())
        self.vals.append(np.asarray(vals, dtype=float).ravel())
        self.lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (k,)))
        self.ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (k,)))
        self.n += k

    def add_coo(
        self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, lb: Any, ub: Any, k: int
    ) -> None:
        """``k`` constraints given as triplets with local row numbers."""
        self.rows.append(rows + self.n)
        self.cols.append(cols)
        self.vals.append(vals.astype(float))
        self.lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (k,)))
        self.ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (k,)))
        self.n += k


def solve_rows_milp(
    demand: np.ndarray,
    weight: np.ndarray,
    n_levels: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    *,
    monotone: bool,
    min_weeks: int,
    floor: np.ndarray | None = None,
    group_floor: float | None = None,
    node_limit: int = 200,
    covers: list[tuple[np.ndarray, float]] | None = None,
    rel_gap: float = 1e-7,
) -> tuple[np.ndarray, np.ndarray, float, float, bool]:
    """Best paths of the rows (pools 0..P-1 local) maximising ``sum x * weight``.

    ``group_floor``: all rows together sell at least this many units; ``covers``: (row mask,
    units) pairs, the masked rows together sell at least that many (sell-through targets).
    Returns (path (R, T), units sold (R, T), objective, dual bound, optimal?). Sales are on
    the path and within every pool's stock; they meet every cover up to HiGHS' feasibility
    tolerance (1e-6 units)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    r, t_len, lv = demand.shape
    p_n = len(stock)
    m = max(1, int(min_weeks))
    nz = r * t_len * lv
    iz = np.arange(nz).reshape(r, t_len, lv)
    ix = nz + iz
    nc = r * t_len if m > 1 else 0
    ic = (2 * nz + np.arange(nc)).reshape(r, t_len) if m > 1 else None
    nvar = 2 * nz + nc
    d = np.maximum(demand, 0.0)
    b = _Builder()
    b.add(iz.reshape(-1, lv), 1.0, 1.0, 1.0)
    if monotone and t_len > 1 and lv > 1:
        low = (np.arange(lv)[None, :] <= np.arange(lv - 1)[:, None]).astype(float)  # (L-1, L)
        cols = np.concatenate(
            [
                np.broadcast_to(iz[:, 1:, None, :], (r, t_len - 1, lv - 1, lv)),
                np.broadcast_to(iz[:, :-1, None, :], (r, t_len - 1, lv - 1, lv)),
            ],
            axis=3,
        ).reshape(-1, 2 * lv)
        vals = np.broadcast_to(np.concatenate([low, -low], axis=1), (r, t_len - 1, lv - 1, 2 * lv))
        b.add(cols, vals.reshape(-1, 2 * lv), -np.inf, 0.0)
    if ic is not None:
        cols = np.stack(
            [iz[:, 1:, :], iz[:, :-1, :], np.broadcast_to(ic[:, 1:, None], iz[:, 1:, :].shape)],
            axis=-1,
        ).reshape(-1, 3)
        b.add(cols, np.array([1.0, -1.0, -1.0]), -np.inf, 0.0)
        b.add(np.stack([iz[:, 0, 0], ic[:, 0]], axis=1), np.array([-1.0, -1.0]), -np.inf, -1.0)
        win = np.minimum(np.arange(t_len)[:, None] + np.arange(m)[None, :], t_len - 1)  # (T, m)
        valid = (np.arange(t_len)[:, None] + np.arange(m)[None, :]) < t_len
        b.add(
            ic[:, win].reshape(-1, m),
            np.broadcast_to(valid, (r, t_len, m)).reshape(-1, m) * 1.0,
            -np.inf,
            1.0,
        )
    b.add(
        np.stack([ix, iz], axis=-1).reshape(-1, 2),
        np.stack([np.ones(nz), -d.ravel()], axis=1),
        -np.inf,
        0.0,
    )
    rr = np.repeat(np.arange(r), t_len * lv)
    total = pool[rr]
    lo_tot = np.zeros(p_n) if floor is None else floor
    b.add_coo(total, ix.ravel(), np.ones(nz), lo_tot - 1e-9 * np.maximum(stock, 1.0), stock, p_n)
    if group_floor is not None:
        b.add(ix.reshape(1, -1), 1.0, group_floor * (1 - 1e-12), np.inf)
    for mask, need in covers or []:
        if need > 0 and mask.any():
            b.add(ix[mask].reshape(1, -1), 1.0, need, np.inf)
    a = coo_matrix(
        (np.concatenate(b.vals), (np.concatenate(b.rows), np.concatenate(b.cols))),
        shape=(b.n, nvar),
    ).tocsr()
    c = np.zeros(nvar)
    c[ix.ravel()] = -np.broadcast_to(weight[:, None, :], (r, t_len, lv)).ravel()
    lo = np.zeros(nvar)
    hi = np.ones(nvar)
    hi[ix.ravel()] = d.ravel()
    hi[iz] = np.where(np.arange(lv)[None, None, :] < n_levels[:, None, None], 1.0, 0.0)
    integ = np.zeros(nvar)
    integ[:nz] = 1
    integ[2 * nz : 2 * nz + nc] = 1
    options: dict[str, Any] = {"mip_rel_gap": rel_gap, "node_limit": node_limit}
    deadline = _DEADLINE.get()
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None:
        if left <= 0:
            _mark_stopped()
            return np.zeros((r, t_len), dtype=np.int8), np.zeros((r, t_len)), -np.inf, np.inf, False
        options["time_limit"] = left
    res = milp(
        c,
        constraints=LinearConstraint(a, np.concatenate(b.lb), np.concatenate(b.ub)),
        integrality=integ,
        bounds=Bounds(lo, hi),
        options=options,
    )
    if res.status == 1 and deadline is not None and time.monotonic() >= deadline - 0.01:
        _mark_stopped()  # stopped by the clock, not by the node limit
    if res.x is None:
        return np.zeros((r, t_len), dtype=np.int8), np.zeros((r, t_len)), -np.inf, np.inf, False
    path = np.argmax(res.x[:nz].reshape(r, t_len, lv), axis=2).astype(np.int8)
    bound = -float(res.mip_dual_bound) if res.mip_dual_bound is not None else np.inf
    on_path = np.take_along_axis(d, path[:, :, None].astype(np.intp), axis=2)[:, :, 0]
    x = res.x[nz : 2 * nz].reshape(r, t_len, lv)
    sales = np.clip(
        np.take_along_axis(x, path[:, :, None].astype(np.intp), axis=2)[:, :, 0], 0, on_path
    )
    per_pool = np.bincount(pool, weights=sales.sum(axis=1), minlength=p_n)
    sales *= np.minimum(1.0, stock / np.maximum(per_pool, 1e-300))[pool][:, None]
    return path, sales, -float(res.fun), bound, bool(res.status == 0)


def improve_with_milp(
    prob: MarkdownProblem,
    sol: Any,
    pool_ub: np.ndarray,
    mu_pool: np.ndarray,
    of_pool: np.ndarray,
    base_price: np.ndarray,
    nlev: np.ndarray,
) -> Any:
    """Solve the pools whose own gap is above the tolerance exactly, worst first."""
    cfg = prob.config
    rel = sol.pool_gap / np.maximum(np.abs(pool_ub), 1e-12)
    open_pools = np.nonzero(rel > 0.5 * cfg.gap_tolerance)[0]  # a margin for the sum
    open_pools = open_pools[np.argsort(-sol.pool_gap[open_pools], kind="stable")][
        : cfg.milp_max_pools
    ]
    for g, mu in enumerate(sol.target_multiplier):  # a target met with units to spare
        members = np.nonzero(of_pool == g)[0]
        slack = mu * (sol.target_sold[g] - sol.target_units[g])
        share = pool_ub[members].sum() - mu * sol.target_units[g]
        if sol.pool_gap[members].sum() + slack > cfg.gap_tolerance * abs(share):
            open_pools = np.union1d(open_pools, members[: cfg.milp_max_pools])
    if not len(open_pools):
        return sol
    path = sol.path.copy()
    ub = pool_ub.copy()
    w_all = base_price - prob.pool_salvage[prob.pool][:, None]
    solved = 0
    batches: list[tuple[np.ndarray, Any, Any]] = []
    free = open_pools[of_pool[open_pools] < 0]
    batches += [(free[i : i + BATCH_POOLS], None, None) for i in range(0, len(free), BATCH_POOLS)]
    targeted = open_pools[of_pool[open_pools] >= 0]
    for g in np.unique(of_pool[targeted]):
        members = np.nonzero(of_pool == g)[0]
        if np.isin(prob.pool, members).sum() <= JOINT_ROWS:  # the whole target group at once
            batches.append((members, None, int(g)))
            continue
        sel = targeted[of_pool[targeted] == g]
        batches += [
            (sel[i : i + BATCH_POOLS], sol.outcome.sold[sel[i : i + BATCH_POOLS]], None)
            for i in range(0, len(sel), BATCH_POOLS)
        ]
    target_ub = sol.target_multiplier * sol.target_units  # subtracted from the pools' share
    for batch, floor, group in batches:
        rows = np.nonzero(np.isin(prob.pool, batch))[0]
        lookup = np.full(len(prob.pool_stock), -1, dtype=np.int64)
        lookup[batch] = np.arange(len(batch))
        p_new, _, obj, bound, _ = solve_rows_milp(
            prob.demand[rows],
            w_all[rows],
            nlev[rows],
            lookup[prob.pool[rows]],
            prob.pool_stock[batch].astype(float),
            monotone=cfg.monotone,
            min_weeks=cfg.min_weeks_between_changes,
            floor=floor,
            group_floor=None if group is None else float(sol.target_units[group]),
            node_limit=cfg.milp_nodes,
        )
        if not np.isfinite(obj):
            continue
        salv = float((prob.pool_salvage[batch] * prob.pool_stock[batch]).sum())
        if obj + salv > float(sol.outcome.value[batch].sum()):
            path[rows] = p_new
        if floor is None and np.isfinite(bound):
            share = ub[batch].sum() - (target_ub[group] if group is not None else 0.0)
            new = min(share, bound + salv)
            if group is not None:
                target_ub[group] = 0.0
                ub[batch] *= new / ub[batch].sum() if ub[batch].sum() > 0 else 1.0
            else:
                ub[batch] *= new / share if share > 0 else 1.0
        solved += len(batch)
    out = fluid(prob.demand, path, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)
    upper = float(ub.sum() - target_ub.sum())
    sel_t = of_pool >= 0
    return replace(
        sol,
        path=path,
        outcome=out,
        value=float(out.value.sum()),
        upper_bound=upper,
        pool_gap=ub - (out.value + mu_pool * out.sold),
        target_sold=np.bincount(
            of_pool[sel_t], weights=out.sold[sel_t], minlength=len(sol.target_names)
        ),
        milp_pools=solved,
    )
