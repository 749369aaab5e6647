"""MLflow tracking options shared by estimate, optimize and simulate, and their printing.

One place so the three commands declare the same options; the tracking itself lives in
:mod:`pricelab.tracking` and the commands stay parse → call → print.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from pricelab.cli._common import err_console
from pricelab.tracking.settings import from_options

MlflowOpt = Annotated[
    bool | None,
    typer.Option(
        "--mlflow/--no-mlflow",
        show_default=False,
        help="Log this run to MLflow (pricelab[mlflow]); default: $PRICELAB_MLFLOW.",
    ),
]
MlflowUriOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow-uri",
        show_default=False,
        help="MLflow tracking URI (implies --mlflow; default $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db).",
    ),
]
MlflowExperimentOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow-experiment",
        show_default=False,
        help="MLflow experiment (implies --mlflow; default $MLFLOW_EXPERIMENT_NAME, "
        "else pricelab).",
    ),
]
StrictTrackingOpt = Annotated[
    bool,
    typer.Option(
        "--strict-tracking",
        help="Exit 1 when MLflow logging fails (the pricelab run is stored either way).",
    ),
]


def tracking_arg(
    mlflow: bool | None,
    mlflow_uri: str | None,
    mlflow_experiment: str | None,
    strict_tracking: bool,
) -> Any:
    """The ``mlflow`` argument of the API from the four options."""
    return from_options(mlflow, mlflow_uri, mlflow_experiment, strict_tracking)


def with_tracking(doc: dict[str, Any], result: Any) -> dict[str, Any]:
    """``doc`` (a ``--json`` document) with ``mlflow`` added when the run was logged."""
    outcome = getattr(result, "mlflow", None)
    return {**doc, "mlflow": outcome.to_dict()} if outcome is not None else doc


def print_tracking(result: Any) -> None:
    """Say on stderr where the run was logged, or that logging failed (a warning)."""
    outcome = getattr(result, "mlflow", None)
    if outcome is None:
        return
    if outcome.ok:
        err_console.print(outcome.message, highlight=False, markup=False)
    else:
        err_console.print(
            f"[yellow]warning:[/] {escape(outcome.message)}; the pricelab run is stored",
            highlight=False,
        )
