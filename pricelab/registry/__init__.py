"""Model registry and promotion gate: which estimate run is in production, and why.

``promote(store, run_id)`` backtests a candidate estimate run against the production run
(:mod:`.gate`) and records the promotion in the ``registry`` table (:mod:`.table`).
``GATE_FLAGS`` is :data:`pricelab.elasticity.results.GATE_FLAGS` (the flags the gate counts).
"""

from pricelab.elasticity.results import GATE_FLAGS
from pricelab.registry.gate import GateComparison, GateConfig, flagged_share, refit_spec
from pricelab.registry.promote import Promotion, compare_runs, promote, resolve_candidate, run_gate
from pricelab.registry.table import current_user, history, production_run, record_promotion

__all__ = [
    "GATE_FLAGS",
    "GateComparison",
    "GateConfig",
    "Promotion",
    "compare_runs",
    "current_user",
    "flagged_share",
    "history",
    "production_run",
    "promote",
    "record_promotion",
    "refit_spec",
    "resolve_candidate",
    "run_gate",
]
