"""Linking constraints: constraints over several rows, as small objects.

Each class knows its name, the rows it links, its usage at a price vector, whether it
holds, whether it binds, its row in the candidate MILP and in the power-cone program,
and how to say that the row limits cannot meet it. The solving routes ask the object;
nothing dispatches on a constraint's name. Add a new linking constraint here (and the
key that creates it in :func:`pricelab.optimize.problem.build_problem`).

- :class:`VolumeFloor` (``min_volume_pct``): the rows' units >= a share of baseline units.
- :class:`StockPool` (``inventory`` with ``stock_pool``): units over the horizon <= stock.
- :class:`AverageChangeBudget` (``max_avg_change_pct``): the baseline-revenue-weighted
  average price change stays within +/- the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pricelab.errors import SolverError

if TYPE_CHECKING:
    from pricelab.optimize.problem import Problem

BIND_TOL = 1e-6  # a units link this close to its limit binds


@dataclass
class Link:
    """A constraint over ``rows`` (integer row indices) with its setting ``value``."""

    key: ClassVar[str]  # the constraints-file key, also the plan's ``binding`` label

    name: str
    rows: np.ndarray
    value: float

    def usage(self, prob: Problem, p: np.ndarray) -> float:
        """What the constraint measures at prices ``p`` (all rows)."""
        raise NotImplementedError

    def label_for(self, i: int) -> str:
        """Row ``i``'s ``binding`` label when this constraint holds its price: the key."""
        return self.key

    def holds(self, prob: Problem, p: np.ndarray, tol: float = 1e-9) -> bool:
        """The constraint is met at ``p`` (relative tolerance ``tol``)."""
        raise NotImplementedError

    def binds(self, prob: Problem, p: np.ndarray) -> bool:
        """The constraint sits on its limit at ``p`` (it holds the rows off their optimum)."""
        raise NotImplementedError

    def milp_row(
        self, prob: Problem, Q: np.ndarray, Pv: np.ndarray, ri: np.ndarray, m: np.ndarray
    ) -> tuple[np.ndarray, float, float]:
        """Coefficients on the candidates ``m`` (units ``Q``, prices ``Pv``, rows ``ri``)
        and the row's (lower, upper) bounds in the candidate MILP.

        The one definition of the constraint's row: linear in each cell's weekly units and
        price, so that :meth:`linear_terms` reads every other form off it."""
        raise NotImplementedError

    def linear_terms(self, prob: Problem) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(a, b, lower, upper)``: the constraint as ``lower <= a @ q + b @ p <= upper`` at
        weekly units ``q`` and prices ``p`` of all rows (``a``, ``b`` zero off its rows),
        read off :meth:`milp_row` at unit cells (the cross route's continuous polish)."""
        r = self.rows
        one, zero, every = np.ones(r.size), np.zeros(r.size), np.ones(r.size, dtype=bool)
        a, b = np.zeros(prob.n), np.zeros(prob.n)
        a[r], lower, upper = self.milp_row(prob, one, zero, r, every)
        b[r], _, _ = self.milp_row(prob, zero, one, r, every)
        return a, b, lower, upper

    def cone(self, prob: Problem, z: Any) -> Any:
        """The constraint on relative demand ``z = q / q0`` (power-cone program)."""
        raise SolverError(f"solve_conic: {self.name} is not supported in quantity space")

    def conflict(self, prob: Problem, q_lo: np.ndarray, q_hi: np.ndarray) -> str | None:
        """Why no prices within the row limits can meet it (None when some can).

        ``q_lo`` / ``q_hi``: weekly units of every row at its lowest / highest price.
        """
        raise NotImplementedError


@dataclass
class UnitsLink(Link):
    """A link on the rows' total units: a floor (``sense`` +1) or a cap (-1)."""

    sense: ClassVar[float]

    def usage(self, prob: Problem, p: np.ndarray) -> float:
        """Weekly units of the rows at ``p``."""
        return float(prob.quantity(p[self.rows], self.rows).sum())

    def rhs(self, prob: Problem) -> float:
        """The limit in the units :meth:`slack` compares with."""
        raise NotImplementedError

    def units_hold(self, prob: Problem, units: Any, tol: float) -> Any:
        """Weekly ``units`` (scalar or array) meet the limit."""
        raise NotImplementedError

    def slack(self, prob: Problem, units: Any) -> Any:
        """Room left at weekly ``units`` (over the horizon; negative when violated)."""
        raise NotImplementedError

    def holds(self, prob: Problem, p: np.ndarray, tol: float = 1e-9) -> bool:
        return bool(self.units_hold(prob, self.usage(prob, p), tol))

    def at_limit(self, prob: Problem, units: float) -> bool:
        """Weekly ``units`` are at (or past) the limit: the link binds there."""
        raise NotImplementedError

    def binds(self, prob: Problem, p: np.ndarray) -> bool:
        return self.at_limit(prob, self.usage(prob, p))


@dataclass
class VolumeFloor(UnitsLink):
    """``min_volume_pct``: the rows sell at least ``value`` % of their baseline units."""

    key: ClassVar[str] = "min_volume_pct"
    sense: ClassVar[float] = 1.0

    def target(self, prob: Problem) -> float:
        """Weekly units the rows must sell."""
        return float(self.value / 100 * prob.q0[self.rows].sum())

    def rhs(self, prob: Problem) -> float:
        return self.target(prob)

    def units_hold(self, prob: Problem, units: Any, tol: float) -> Any:
        return units >= self.target(prob) * (1 - tol)

    def slack(self, prob: Problem, units: Any) -> Any:
        return prob.horizon * (units - self.target(prob))

    def at_limit(self, prob: Problem, units: float) -> bool:
        return units <= self.target(prob) * (1 + BIND_TOL)

    def milp_row(self, prob, Q, Pv, ri, m):
        return Q[m] / self.target(prob), 1.0, np.inf

    def cone(self, prob: Problem, z: Any) -> Any:
        q0 = prob.q0[self.rows]
        return (q0 / q0.sum()) @ z[self.rows] >= self.value / 100

    def conflict(self, prob: Problem, q_lo: np.ndarray, q_hi: np.ndarray) -> str | None:
        r = self.rows
        need = self.value / 100 * prob.q0[r].sum() * prob.horizon
        best = q_lo[r].sum() * prob.horizon
        if best >= need * (1 - 1e-9):
            return None
        top = r[np.argsort(prob.lo[r] / prob.p0[r])[::-1][:3]]
        held = ", ".join(f"{prob.label(i)} >= {prob.lo[i]:.2f} ({prob.lo_src[i]})" for i in top)
        return (
            f"{self.name} needs >= {need:.1f} units over {prob.horizon:g} weeks but "
            f"the lowest allowed prices sell at most {best:.1f} (floors: {held})"
        )


@dataclass
class StockPool(UnitsLink):
    """``inventory`` over a ``stock_pool``: units over the horizon <= the pool's stock."""

    key: ClassVar[str] = "inventory"
    sense: ClassVar[float] = -1.0

    owner: str = ""  # whose stock: ``ITEM/MARKET`` (dedicated) or ``pool ID``

    def label_for(self, i: int) -> str:
        """``inventory`` on the rows that draw on the stock; ``inventory of OWNER`` on another
        row whose price protects it (a sibling under cross-price demand)."""
        if not self.owner or i in self.rows.tolist():
            return self.key
        return f"{self.key} of {self.owner.replace(',', ';')}"

    def rhs(self, prob: Problem) -> float:
        return self.value

    def units_hold(self, prob: Problem, units: Any, tol: float) -> Any:
        return prob.horizon * units <= self.value * (1 + tol)

    def slack(self, prob: Problem, units: Any) -> Any:
        return self.value - prob.horizon * units

    def at_limit(self, prob: Problem, units: float) -> bool:
        return prob.horizon * units >= self.value * (1 - BIND_TOL)

    def milp_row(self, prob, Q, Pv, ri, m):
        return prob.horizon * Q[m] / self.value, -np.inf, 1.0

    def cone(self, prob: Problem, z: Any) -> Any:
        return prob.horizon * (prob.q0[self.rows] / self.value) @ z[self.rows] <= 1

    def conflict(self, prob: Problem, q_lo: np.ndarray, q_hi: np.ndarray) -> str | None:
        r = self.rows
        least = q_hi[r].sum() * prob.horizon
        if least <= self.value * (1 + 1e-9):
            return None
        caps = ", ".join(f"{prob.label(i)} <= {prob.hi[i]:.2f}" for i in r[:3])
        return (
            f"{self.name}: even the highest allowed prices sell {least:.1f} units "
            f"over {prob.horizon:g} weeks (caps: {caps})"
        )


@dataclass
class AverageChangeBudget(Link):
    """``max_avg_change_pct``: |sum a p / sum a p0 - 1| <= value %, a = q0 / fx."""

    key: ClassVar[str] = "max_avg_change_pct"

    def weights(self, prob: Problem) -> np.ndarray:
        """a_i = q0_i / fx_i of the rows."""
        r = self.rows
        return prob.q0[r] / prob.fx[r]

    def usage(self, prob: Problem, p: np.ndarray) -> float:
        """Average price change at ``p`` as a ratio (1 = unchanged)."""
        a = self.weights(prob)
        return float((a * p[self.rows]).sum() / (a * prob.p0[self.rows]).sum())

    def holds(self, prob: Problem, p: np.ndarray, tol: float = 1e-9) -> bool:
        return abs(self.usage(prob, p) - 1) <= self.value / 100 + tol

    def binds(self, prob: Problem, p: np.ndarray) -> bool:
        # the candidate MILP reports no multiplier for a budget: it counts as binding
        # wherever it moves a row off its own optimum (the caller checks the move)
        return True

    def milp_row(self, prob, Q, Pv, ri, m):
        w = prob.p0 * prob.q0 / prob.fx
        w = w / w[self.rows].sum()
        x = self.value / 100
        return (w[ri] * Pv / prob.p0[ri])[m], 1 - x, 1 + x

    def conflict(self, prob: Problem, q_lo: np.ndarray, q_hi: np.ndarray) -> str | None:
        r = self.rows
        w = prob.p0[r] * prob.q0[r] / prob.fx[r]
        w = w / w.sum()
        lo_c = 100 * (w @ (prob.lo[r] / prob.p0[r]) - 1)
        hi_c = 100 * (w @ (np.minimum(prob.hi[r], 1e300) / prob.p0[r]) - 1)
        if lo_c > self.value + 1e-9 or hi_c < -self.value - 1e-9:
            return (
                f"{self.name}: achievable average change is [{lo_c:.2f}%, {hi_c:.2f}%], "
                f"outside ±{self.value:g}%"
            )
        return None


def links_hold(prob: Problem, p: np.ndarray, tol: float = 1e-9) -> bool:
    """Every linking constraint of ``prob`` holds at ``p``."""
    return all(lk.holds(prob, p, tol) for lk in prob.links)
