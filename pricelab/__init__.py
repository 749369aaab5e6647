"""pricelab: price experimentation and optimization toolkit.

Library functions work on polars frames::

    import pricelab
    res = pricelab.estimate(sales, model="hierarchical", items=items)   # ElasticityResults
    plan = pricelab.optimize(demand, "constraints.yaml")                # Plan

Database-level functions (what each CLI command calls) live in :mod:`pricelab.api`::

    pricelab.api.ingest("shop.duckdb", sales="sales.csv")
    run = pricelab.api.estimate("shop.duckdb", model="poisson")
    table = pricelab.simulate("shop.duckdb", "scenario.yaml").table
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# name -> module that defines it; imported on first use so the CLI starts fast
_EXPORTS: dict[str, str] = {
    "estimate": "pricelab.elasticity",
    "ElasticityResults": "pricelab.elasticity",
    "load_constraints": "pricelab.optimize",
    "Plan": "pricelab.optimize",
    "plan_markdown": "pricelab.markdown",
    "MarkdownPlan": "pricelab.markdown",
    "design_experiment": "pricelab.experiment",
    "analyze_experiment": "pricelab.experiment",
    "ExperimentDesign": "pricelab.experiment",
    "ExperimentAnalysis": "pricelab.experiment",
    "load_scenario": "pricelab.simulate",
    "backtest": "pricelab.simulate",
    "Store": "pricelab.store",
    "read_table": "pricelab.io",
    "write_table": "pricelab.io",
}
_API_EXPORTS = {"ingest": "ingest", "validate": "validate"}
# plain functions named like a subpackage: pricelab.optimize(demand, constraints) -> Plan,
# pricelab.simulate(db, scenario) -> polars.DataFrame (the subpackages stay importable as
# ``from pricelab.optimize import ...``)
_FUNCTIONS: dict[str, tuple[str, str]] = {
    "optimize": ("pricelab.optimize.solve", "optimize"),
    "simulate": ("pricelab.api.whatif", "simulate_table"),
}
_MODULES = {"api", "errors"}

__all__ = [
    "__version__",
    *sorted(_EXPORTS),
    *sorted(_API_EXPORTS),
    *sorted(_FUNCTIONS),
    *sorted(_MODULES),
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pricelab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+local"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read on first use: importlib.metadata is slow to import
        value = globals()["__version__"] = _version()
        return value
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _API_EXPORTS:
        return getattr(importlib.import_module("pricelab.api"), _API_EXPORTS[name])
    if name in _FUNCTIONS:
        module, attr = _FUNCTIONS[name]
        value = globals()[name] = getattr(importlib.import_module(module), attr)
        return value
    if name in _MODULES:
        return importlib.import_module(f"pricelab.{name}")
    raise AttributeError(f"module 'pricelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """Python binds an imported subpackage to its name on the parent package; for the
    names in ``_FUNCTIONS`` the function keeps the name (``pricelab.optimize`` is the
    function ``optimize``, not the subpackage ``pricelab/optimize/``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
