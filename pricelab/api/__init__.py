"""The Python API: one function per command. The CLI calls these and only these.

Every function opens the database itself (``db``: a path, or None for ``$PRICELAB_DB`` /
``./pricelab.duckdb``) and closes it before returning, so a batch job never holds a lock
longer than one call.

Each name is imported from its module on first use, so a command loads only its own part
of the API (``pricelab simulate`` does not import ingest, the demo or the optimizer);
``from pricelab.api import estimate`` and ``pricelab.api.estimate`` work as before.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pricelab.api.data import (
        PathLike,
        diff_runs,
        ingest,
        run,
        runs,
        sample,
        sample_files,
        validate,
    )
    from pricelab.api.demo import demo
    from pricelab.api.estimate import EstimateRun, estimate
    from pricelab.api.experiments import experiment_analyze, experiment_design
    from pricelab.api.markdown import (
        MarkdownRun,
        markdown_plan,
        markdown_replay,
        markdown_replay_ref,
        simulate_or_replay,
    )
    from pricelab.api.ops import monitor, report
    from pricelab.api.optimize import OptimizeRun, optimize
    from pricelab.api.production import pipeline, promote, registry
    from pricelab.api.whatif import backtest, simulate

#: name -> the module of pricelab.api that defines it
_MODULES: dict[str, str] = {
    **dict.fromkeys(
        ("PathLike", "diff_runs", "ingest", "run", "runs", "sample", "sample_files", "validate"),
        "data",
    ),
    "demo": "demo",
    "EstimateRun": "estimate",
    "estimate": "estimate",
    "experiment_analyze": "experiments",
    "experiment_design": "experiments",
    **dict.fromkeys(
        (
            "MarkdownRun",
            "markdown_plan",
            "markdown_replay",
            "markdown_replay_ref",
            "simulate_or_replay",
        ),
        "markdown",
    ),
    "monitor": "ops",
    "report": "ops",
    "OptimizeRun": "optimize",
    "optimize": "optimize",
    "pipeline": "production",
    "promote": "production",
    "registry": "production",
    "backtest": "whatif",
    "simulate": "whatif",
}

__all__ = [
    "EstimateRun",
    "MarkdownRun",
    "OptimizeRun",
    "PathLike",
    "backtest",
    "demo",
    "diff_runs",
    "estimate",
    "experiment_analyze",
    "experiment_design",
    "ingest",
    "markdown_plan",
    "markdown_replay",
    "markdown_replay_ref",
    "simulate_or_replay",
    "monitor",
    "optimize",
    "pipeline",
    "promote",
    "registry",
    "report",
    "run",
    "runs",
    "sample",
    "sample_files",
    "simulate",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'pricelab.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pricelab.api.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return list(__all__)


class _Package(types.ModuleType):
    """Python binds an imported submodule to its name on the package; the functions named
    like their module (``estimate``, ``optimize``, ``demo``) keep the name, as they did when
    this file imported them all."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
