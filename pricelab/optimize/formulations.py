"""cvxpy formulations (optimization.md 1, 3, 4): the undecomposed checks and small blocks.

- :func:`solve_conic` — constant elasticity, elastic rows, in quantity space with one
  vectorised ``cp.PowCone3D`` for all rows, scaled data; bounds, margin floors, volume
  floors and stock pools. Used to check the decomposition and in the benchmark.
- :func:`solve_linear_qp` — linear demand with cross-price effects: a concave QP.
- :func:`solve_logit` — multinomial logit profit in share space (``cp.entr``).
Every solver status maps to an outcome: optimal; inaccurate -> retry with the next
solver; infeasible -> InfeasibleError; unbounded -> SolverError.
"""

from __future__ import annotations

from typing import cast

import cvxpy as cp
import numpy as np

from pricelab.demand.curves import ConstantElasticity
from pricelab.errors import InfeasibleError, SolverError
from pricelab.optimize.problem import Problem


def _solve(prob: cp.Problem, solvers: tuple[str, ...], what: str) -> str:
    last = "not solved"
    for s in solvers:
        try:
            prob.solve(solver=s)
        except cp.error.SolverError as exc:
            last = f"{s}: {exc}"
            continue
        st = prob.status
        if st == cp.OPTIMAL:
            return s
        if st in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise InfeasibleError(f"{what}: solver {s} reports the problem infeasible")
        if st in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
            raise SolverError(f"{what}: solver {s} reports the problem unbounded")
        last = f"{s}: {st}"  # optimal_inaccurate or other: try the next solver
    raise SolverError(f"{what}: no solver reached an optimal solution ({last})")


def solve_conic(prob: Problem, solvers: tuple[str, ...] = ("CLARABEL", "SCS")) -> np.ndarray:
    """Prices maximising the objective in quantity space (elastic rows only)."""
    if np.any(prob.e >= -1):
        raise SolverError("solve_conic: inelastic rows need the price-space formulation")
    n = prob.n
    r = 1.0 + 1.0 / prob.e
    z = cp.Variable(n)
    t = cp.Variable(n)
    base_rev = prob.p0 * prob.q0 / prob.fx
    scale = base_rev.mean()
    w_rev = base_rev / scale
    w_cost = prob.cost * prob.q0 / prob.fx / scale
    unit = ConstantElasticity(prob.p0, 1.0, prob.e)  # z = q / q0
    zmin = unit.ratio_power(np.minimum(prob.hi, 1e300))
    zmax = np.where(prob.lo > 0, unit.ratio_power(np.maximum(prob.lo, 1e-300)), 1e6)
    cons = [cp.PowCone3D(z, np.ones(n), t, r), z >= zmin, z <= zmax]
    cons += [lk.cone(prob, z) for lk in prob.links]
    obj = cp.Maximize(w_rev @ t - w_cost @ z)
    _solve(cp.Problem(obj, cons), solvers, "power-cone program")
    z_opt = cast(np.ndarray, z.value)  # set: _solve returns only on an optimal status
    return unit.price_for_quantity(np.maximum(z_opt, 1e-300))


def solve_linear_qp(
    intercept: np.ndarray,
    matrix: np.ndarray,
    unit_cost: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    A: np.ndarray | None = None,
    b: np.ndarray | None = None,
) -> np.ndarray:
    """Maximise (p - c)'(a - D p) s.t. lo <= p <= hi and A p <= b (concave QP).

    Raises SolverError naming the non-concavity when D + D' is not positive semidefinite.
    """
    D = np.asarray(matrix, dtype=float)
    S = 0.5 * (D + D.T)
    if np.linalg.eigvalsh(S).min() < -1e-9:
        raise SolverError(
            "linear demand: D + D' is not positive semidefinite; profit is not "
            "concave (check cross-price effects)"
        )
    p = cp.Variable(len(intercept))
    obj = cp.Maximize(-cp.quad_form(p, cp.psd_wrap(S)) + (intercept + D.T @ unit_cost) @ p)
    cons = [p >= lo, p <= hi]
    if A is not None:
        cons.append(A @ p <= b)
    _solve(cp.Problem(obj, cons), ("CLARABEL", "OSQP", "SCS"), "linear-demand QP")
    return np.asarray(p.value)


def solve_logit(
    attraction: np.ndarray,
    price_sensitivity: float,
    unit_cost: np.ndarray,
    market_size: float = 1.0,
) -> np.ndarray:
    """Profit-maximising prices under multinomial logit demand (share space, exact).

    With p_j = (a_j - log s_j + log s_0) / b, revenue is
    (a's + sum_j entr(s_j) + log s_0 + entr(s_0)) / b, concave in the shares s.
    """
    a = np.asarray(attraction, dtype=float)
    c = np.asarray(unit_cost, dtype=float)
    b = float(price_sensitivity)
    s = cp.Variable(a.size)
    s0 = 1 - cp.sum(s)
    # p_j s_j = (a_j s_j - s_j log s_j + s_j log s_0) / b ; sum_j s_j log s_0 = (1 - s0) log s0
    # (1 - s0) log s0 = log s0 - s0 log s0 = log(s0) + entr(s0): concave.
    rev = (a @ s + cp.sum(cp.entr(s)) + cp.log(s0) + cp.entr(s0)) / b
    obj = cp.Maximize(market_size * (rev - c @ s))
    _solve(cp.Problem(obj, [s >= 0, cp.sum(s) <= 1]), ("CLARABEL", "SCS"), "logit program")
    sv = np.asarray(s.value)
    return (a - np.log(sv) + np.log(1 - sv.sum())) / b
