"""Price optimisation: exact formulations under business constraints (optimization.md)."""

from pricelab.optimize.constraints import Constraints, load_constraints, loads_constraints
from pricelab.optimize.plan import PLAN_COLUMNS, Plan
from pricelab.optimize.solve import optimize

__all__ = [
    "PLAN_COLUMNS",
    "Constraints",
    "Plan",
    "load_constraints",
    "loads_constraints",
    "optimize",
]
