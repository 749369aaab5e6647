"""cvxpy formulation (optimization.md 1): the undecomposed check of the decomposition.

- :func:`solve_conic` — constant elasticity, elastic rows, in quantity space with one
  vectorised ``cp.PowCone3D`` for all rows, scaled data; bounds, margin floors, volume
  floors and stock pools. Used to check the decomposition and in the benchmark.
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
