"""Price elasticity estimation per item × market: five batched models with diagnostics.

``estimate(sales, model=...)`` returns an :class:`ElasticityResults`; ``fit_partition``
runs the same batched code on one partition of whole groups (for the Spark engine).
"""

from .model import MODELS, estimate, fit_partition
from .results import ElasticityResults

__all__ = ["MODELS", "ElasticityResults", "estimate", "fit_partition"]
