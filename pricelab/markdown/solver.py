"""Lagrangian decomposition of the markdown problem, with a proven gap.

Every stock pool p gets a multiplier lambda_p >= 0 on ``units sold <= stock``, every
sell-through target g a multiplier mu_g >= 0 on ``units sold >= target``. For fixed
multipliers each row's best path is a dynamic programme (:mod:`pricelab.markdown.dp`) with
per-unit weight ``price - salvage - lambda_p + mu_g``. Since every row of a pool belongs to
one category, only ``nu_p = lambda_p - mu_g`` matters to the rows: each pool's best
``nu_p`` is found once by cutting planes on its piecewise-linear dual (all pools at once,
:mod:`pricelab.markdown.multipliers`), and the category targets by an outer bisection on mu_g in which only the pools whose stock does not bind move.

The dual value ``sum_p [s_p S_p + lambda_p S_p + DP_p] - sum_g mu_g T_g`` bounds every plan
from above (the DP's clipped weights let it sell less than demand, a relaxation of the fluid
model); the plan is the better of the two paths at each end of a pool's bracket, run through
the fluid model (sales capped by stock left). Pools whose own gap stays above the tolerance
are solved exactly by MILP (:mod:`pricelab.markdown.milp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pricelab.errors import InfeasibleError
from pricelab.markdown.dp import best_paths_lm, level_major, path_demand
from pricelab.markdown.fluid import FluidOutcome, fluid, select
from pricelab.markdown.multipliers import find_multipliers
from pricelab.markdown.primal import _enumerate, _mix, _polish
from pricelab.markdown.problem import MarkdownProblem
from pricelab.markdown.switch import switch_week

BISECT_ITERS = 16


@dataclass
class MarkdownSolution:
    """The chosen path per row, its fluid outcome, the dual bound and the multipliers."""

    path: np.ndarray  # (R, T) ladder level index
    outcome: FluidOutcome
    upper_bound: float
    value: float
    stock_multiplier: np.ndarray  # (P,) lambda_p, base currency per unit
    target_names: list[str]
    target_units: np.ndarray
    target_multiplier: np.ndarray
    target_sold: np.ndarray
    pool_gap: np.ndarray  # (P,) pool's own gap (its Lagrangian share minus its value)
    milp_pools: int = 0
    milp_time_limit: bool = False  # an exact MILP step stopped on the clock (milp_seconds)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Proven relative gap (upper bound - value) / upper bound."""
        return max(0.0, self.upper_bound - self.value) / max(abs(self.upper_bound), 1e-12)


class _Rows:
    """The DP over a subset of rows for per-pool nu values (demand kept level-major)."""

    def __init__(self, prob: MarkdownProblem, w0: np.ndarray, nlev: np.ndarray) -> None:
        self.prob, self.w0, self.nlev = prob, w0, nlev
        self.demand_t = level_major(prob.demand)
        cfg = prob.config
        self.kw: dict[str, Any] = {
            "monotone": cfg.monotone,
            "min_weeks": cfg.min_weeks_between_changes,
        }

    def solve(
        self, rows: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(path, clipped value, clipped units) of ``rows`` at per-row ``weight``."""
        every = len(rows) == self.w0.shape[0]
        return best_paths_lm(
            self.demand_t, weight, self.nlev[rows], rows=None if every else rows, **self.kw
        )

    def run(self, rows: np.ndarray, nu_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(path, clipped DP value) of ``rows`` at per-row ``nu``."""
        path, value, _ = self.solve(rows, self.w0[rows] - nu_row[:, None])
        return path, value

    def clipped_units(self, rows: np.ndarray, nu_row: np.ndarray) -> np.ndarray:
        """Per-row units along the best path where the weight is positive."""
        return self.solve(rows, self.w0[rows] - nu_row[:, None])[2]

    def units(self, rows: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(path, every unit along it) of ``rows`` at a positive per-row ``weight``."""
        path, _, units = self.solve(rows, weight)
        return path, units


def _pool_sum(pool: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pool, weights=x, minlength=n)


def _candidates(
    prob: MarkdownProblem, dp: _Rows, nu: np.ndarray, base_price: np.ndarray
) -> tuple[np.ndarray, np.ndarray, FluidOutcome]:
    """Paths at per-pool ``nu``, their per-pool clipped DP value and fluid outcome."""
    rows = np.arange(len(prob.pool))
    path, val = dp.run(rows, nu[prob.pool])
    n = len(prob.pool_stock)
    out = fluid(prob.demand, path, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)
    return path, _pool_sum(prob.pool, val, n), out


def _target_search(
    prob: MarkdownProblem,
    dp: _Rows,
    lo: np.ndarray,
    of_pool: np.ndarray,
    names: list[str],
    units: np.ndarray,
    base_price: np.ndarray,
) -> np.ndarray:
    """mu_g per target: the smallest found where the plan's units meet the target."""
    n_t = len(names)
    mu = np.zeros(n_t)
    if not n_t:
        return mu
    n = len(prob.pool_stock)
    in_t = of_pool >= 0
    rows = np.nonzero(in_t[prob.pool])[0]
    prow = prob.pool[rows]

    def sold(m: np.ndarray) -> np.ndarray:
        nu = np.maximum(lo, -m[np.maximum(of_pool, 0)] * in_t)
        path, _ = dp.run(rows, nu[prow])
        tot = _pool_sum(prow, path_demand(prob.demand[rows], path).sum(axis=1), n)
        per_pool = np.minimum(tot, prob.pool_stock) * in_t
        return np.bincount(of_pool[in_t], weights=per_pool[in_t], minlength=n_t)

    # the most the deepest allowed discounts can sell: infeasible targets stop here
    _, every = dp.units(rows, np.ones_like(dp.w0[rows]))
    tot = _pool_sum(prow, every, n)
    most = np.bincount(of_pool[in_t], weights=np.minimum(tot, prob.pool_stock)[in_t], minlength=n_t)
    stock_t = np.bincount(of_pool[in_t], weights=prob.pool_stock[in_t], minlength=n_t)
    bad = np.nonzero(most < units * (1 - 1e-9) - 1e-9)[0]
    if len(bad):
        g = int(bad[0])
        raise InfeasibleError(
            f"sell_through_min_pct: category {names[g]!r} needs {units[g]:.0f} of its "
            f"{stock_t[g]:.0f} units sold, but at most {most[g]:.0f} "
            f"({100 * most[g] / max(stock_t[g], 1e-12):.1f}%) sell even at the deepest "
            "allowed discount from week 1",
            hint="lower the target or allow deeper discounts (max_discount_pct, ladder)",
        )
    need = sold(mu) < units
    if not need.any():
        return mu
    scale = float(np.max(np.abs(dp.w0[np.isfinite(dp.w0)]), initial=1.0))
    m_lo, m_hi = np.zeros(n_t), np.where(need, scale, 0.0)
    for _ in range(40):
        short = need & (sold(m_hi) < units)
        if not short.any():
            break
        m_lo = np.where(short, m_hi, m_lo)
        m_hi = np.where(short, m_hi * 4.0, m_hi)
    for _ in range(BISECT_ITERS):
        act = need & ((m_hi - m_lo) > 1e-10 * np.maximum(1.0, m_hi))
        if not act.any():
            break
        mid = np.where(act, 0.5 * (m_lo + m_hi), m_hi)
        ok = sold(mid) >= units
        m_hi = np.where(act & ok, mid, m_hi)
        m_lo = np.where(act & ~ok, mid, m_lo)
    return m_hi


def solve_markdown(prob: MarkdownProblem) -> MarkdownSolution:
    """Plan every row's ladder path; see the module docstring.

    Per-market sell-through targets are priced by an outer search on their multipliers
    (:mod:`pricelab.markdown.market_targets`); a gap left open by category targets is
    closed by :mod:`pricelab.markdown.targets`.
    """
    from pricelab.markdown.milp import milp_budget

    with milp_budget(prob.config.milp_seconds) as stopped:
        if prob.config.market_rules and len(prob.market_targets()[1]):
            from pricelab.markdown.market_targets import solve_with_market_targets

            sol = solve_with_market_targets(prob, solve_core)
        else:
            sol = solve_core(prob)
            if len(sol.target_names) and sol.gap > prob.config.gap_tolerance:
                from pricelab.markdown.targets import close_category_gap

                sol = close_category_gap(prob, sol)  # category targets couple pools
    return replace(sol, milp_time_limit=stopped[0])


def solve_core(
    prob: MarkdownProblem, bonus: np.ndarray | None = None, *, milp: bool = True
) -> MarkdownSolution:
    """The Lagrangian + DP plan with ``bonus`` (R,) added to every unit's price (market
    targets' multipliers, base currency per unit): the bound, the plan's value, the stock
    allocation and every repair step then see the same objective. ``milp``: polish open
    pools exactly."""
    from pricelab.markdown.choose import choose_and_repair
    from pricelab.markdown.milp import improve_with_milp

    base_price = prob.base_price()
    if bonus is not None:
        base_price = base_price + bonus[:, None]
    salv_row = prob.pool_salvage[prob.pool]
    w0 = base_price - salv_row[:, None]
    nlev = prob.n_levels()
    dp = _Rows(prob, w0, nlev)
    n = len(prob.pool_stock)
    stock = prob.pool_stock.astype(float)
    rows = np.arange(len(prob.pool))
    # pools whose stock can bind at all: the most-demand path sells more than the stock
    most = _pool_sum(prob.pool, dp.units(rows, np.ones_like(w0))[1], n)
    binding = most > stock
    wmax = np.full(n, -np.inf)
    np.maximum.at(
        wmax, prob.pool, np.where(np.arange(w0.shape[1]) < nlev[:, None], w0, -np.inf).max(axis=1)
    )
    hi = np.where(binding, np.maximum(wmax, 0.0), 0.0)
    lo, hi = find_multipliers(dp, prob.pool, stock, binding, hi)
    lo = np.where(binding, lo, -np.inf)
    of_pool, names, units = prob.targets()
    mu = _target_search(prob, dp, lo, of_pool, names, units, base_price)
    mu_pool = np.zeros(n)
    mu_pool[of_pool >= 0] = mu[of_pool[of_pool >= 0]]
    nu_a = np.maximum(lo, -mu_pool)
    nu_b = np.where(binding, np.maximum(hi, -mu_pool), nu_a)
    path_a, dpv_a, out_a = _candidates(prob, dp, nu_a, base_price)
    path_b, dpv_b, out_b = _candidates(prob, dp, nu_b, base_price)
    lag_a = (nu_a + mu_pool) * stock + dpv_a
    lag_b = (nu_b + mu_pool) * stock + dpv_b
    use_b_for_bound = lag_b < lag_a
    pool_ub = prob.pool_salvage * stock + np.where(use_b_for_bound, lag_b, lag_a)
    lam = np.where(use_b_for_bound, nu_b, nu_a) + mu_pool
    upper = float(pool_ub.sum() - (mu * units).sum())
    pick_b = choose_and_repair(out_a, out_b, mu_pool, of_pool, units)
    path = np.where(pick_b[prob.pool][:, None], path_b, path_a)
    out = select(out_a, out_b, pick_b, prob.pool)
    path, out = switch_week(prob, path_a, path_b, path, out, base_price, of_pool)
    target_term = float((mu * units).sum())
    path, out, pool_ub = _enumerate(
        prob, dp, path, out, pool_ub, lam, mu_pool, of_pool, units, base_price, target_term
    )
    upper = float(pool_ub.sum() - target_term)
    if _open(prob, upper, out):  # repairs only while the proven gap is above tolerance
        path, out = _mix(prob, path_a, path_b, path, out, pool_ub, mu_pool, of_pool, base_price)
    if _open(prob, upper, out):
        path, out = _polish(prob, path, out, pool_ub, mu_pool, of_pool, units, base_price, nlev)
    sol = MarkdownSolution(
        path=path,
        outcome=out,
        upper_bound=upper,
        value=float(out.value.sum()),
        stock_multiplier=lam,
        target_names=names,
        target_units=units,
        target_multiplier=mu,
        target_sold=_target_sold(out, of_pool, len(names)),
        pool_gap=pool_ub - (out.value + mu_pool * out.sold),
        stats={"binding_pools": int(binding.sum()), "rows": int(len(rows))},
    )
    if not milp or not _open(prob, upper, out):
        return sol
    return improve_with_milp(prob, sol, pool_ub, mu_pool, of_pool, base_price, nlev)


def _open(prob: MarkdownProblem, upper: float, out: FluidOutcome) -> bool:
    """True while the proven gap is above half the tolerance (a margin for the steps after)."""
    gap = (upper - float(out.value.sum())) / max(abs(upper), 1e-12)
    return gap > 0.5 * prob.config.gap_tolerance


def _target_sold(out: FluidOutcome, of_pool: np.ndarray, n_t: int) -> np.ndarray:
    sel = of_pool >= 0
    return np.bincount(of_pool[sel], weights=out.sold[sel], minlength=n_t)
