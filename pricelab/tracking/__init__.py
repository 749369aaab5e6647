"""Optional experiment tracking: log estimate, optimize and simulate runs to MLflow.

Install with ``pip install 'pricelab[mlflow]'``; turn on with ``--mlflow`` (or
``PRICELAB_MLFLOW=1``, or ``mlflow=...`` in :mod:`pricelab.api`). See
:mod:`pricelab.tracking.settings` for the URI and experiment, :mod:`.metrics` for what
each command logs, and :func:`log_run` for how failures are handled.
"""

from pricelab.tracking.metrics import run_metrics
from pricelab.tracking.mlflow_log import TrackingOutcome, flatten_params, log_run, run_tags
from pricelab.tracking.settings import (
    DEFAULT_EXPERIMENT,
    DEFAULT_TRACKING_URI,
    ENV_ENABLE,
    MlflowSettings,
    require_mlflow,
    resolve_mlflow,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_TRACKING_URI",
    "ENV_ENABLE",
    "MlflowSettings",
    "TrackingOutcome",
    "flatten_params",
    "log_run",
    "require_mlflow",
    "resolve_mlflow",
    "run_metrics",
    "run_tags",
]
