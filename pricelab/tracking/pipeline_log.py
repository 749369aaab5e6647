"""MLflow logging of a pipeline run's decisions: the gate's backtest, the promotion (or
refusal, with its reason), the monitoring outcome and the pipeline run itself.

The estimate and optimize steps log their own runs (the API's ``mlflow`` argument); this
logs the rest once the pipeline run is recorded, the pipeline run last so that its MLflow
run lists the steps' MLflow runs as parents. What each run logs (metrics, decision tags):
:mod:`pricelab.tracking.metrics`, :func:`pricelab.tracking.mlflow_log.decision_tags`.
"""

from __future__ import annotations

from typing import Any

from pricelab.store.db import Store
from pricelab.tracking.mlflow_log import log_run
from pricelab.tracking.settings import MlflowSettings

#: pipeline step -> the result table logged with its run (None: the run record only)
STEP_TABLES: dict[str, str | None] = {"backtest": "gate_scores", "promote": None, "monitor": None}


def log_pipeline(
    store: Store, steps: list[Any], run_id: str, settings: MlflowSettings
) -> list[dict[str, Any]]:
    """Log the new gate, promote and monitor runs of ``steps``, then pipeline run ``run_id``.

    Returns one entry per logged run (``step``, ``pricelab_run`` and the tracking outcome).
    A failure is reported in the entry (``ok`` false); with ``settings.strict`` it raises
    :class:`~pricelab.errors.CheckFailed` (the pricelab runs stay stored).
    """
    out = []
    todo = [(s.step, s.run_id) for s in steps if s.new and s.run_id and s.step in STEP_TABLES]
    for step, rid in [*todo, ("pipeline", run_id)]:
        name = STEP_TABLES.get(step)
        table = store.read_result(name, rid) if name else None
        outcome = log_run(store, rid, table, settings, table_name=name or "result")
        if outcome is not None:
            out.append({"step": step, "pricelab_run": rid, **outcome.to_dict()})
    return out
