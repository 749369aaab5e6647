"""The Python API: one function per command. The CLI calls these and only these.

Every function opens the database itself (``db``: a path, or None for ``$PRICELAB_DB`` /
``./pricelab.duckdb``) and closes it before returning, so a batch job never holds a lock
longer than one call.
"""

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
