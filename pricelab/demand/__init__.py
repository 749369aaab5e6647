"""Demand curves (constant elasticity, linear, logit) and elasticity draws."""

from pricelab.demand.curves import ConstantElasticity, LinearDemand, LogitDemand
from pricelab.demand.draws import elasticity_draws

__all__ = ["ConstantElasticity", "LinearDemand", "LogitDemand", "elasticity_draws"]
