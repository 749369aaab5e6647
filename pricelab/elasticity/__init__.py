"""Price elasticity estimation per item × market: five batched models with diagnostics.

``estimate(sales, model=...)`` returns an :class:`ElasticityResults`. The engines run
the same batched code on partitions of whole groups through :mod:`.batched`
(``fit_groups``, ``group_stats``, ``shrink_groups``, ``wrap_results``, ...), all
re-exported here; ``fit_partition`` fits one partition given as a pandas, Arrow or
polars frame.
"""

from .batched import (
    REQUIRED_COLUMNS,
    STAT_COLUMNS,
    STREAMED_MODELS,
    GroupFits,
    compiled_loading,
    fit_groups,
    fit_streamed,
    fits_table,
    group_stats,
    normalize_by,
    prepare_compiled,
    refit_groups,
    resolve_controls,
    resolve_se,
    shrink_groups,
    with_params,
    wrap_results,
)
from .fitters import NOT_PER_GROUP, not_per_group
from .model import MODELS, estimate, fit_partition
from .results import ElasticityResults

__all__ = [
    "MODELS",
    "NOT_PER_GROUP",
    "REQUIRED_COLUMNS",
    "STAT_COLUMNS",
    "STREAMED_MODELS",
    "ElasticityResults",
    "GroupFits",
    "compiled_loading",
    "estimate",
    "fit_groups",
    "fit_partition",
    "fit_streamed",
    "fits_table",
    "group_stats",
    "normalize_by",
    "not_per_group",
    "prepare_compiled",
    "refit_groups",
    "resolve_controls",
    "resolve_se",
    "shrink_groups",
    "with_params",
    "wrap_results",
]
