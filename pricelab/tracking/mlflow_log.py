"""Log a stored pricelab run to MLflow: parameters, metrics, tags and the result table.

The pricelab run is committed first and then read back, so what MLflow shows is what the
runs table holds. An MLflow failure never loses the pricelab run: the failure is recorded
in the run's summary (``summary.mlflow.error``) and returned; with ``strict`` it then
raises :class:`~pricelab.errors.CheckFailed` (exit 1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.errors import CheckFailed
from pricelab.store import Store
from pricelab.store.runs import get_run
from pricelab.tracking.metrics import run_metrics
from pricelab.tracking.settings import MlflowSettings, require_mlflow
from pricelab.urls import redact

#: MLflow's limits (mlflow.utils.validation), used when the installed version lacks them
_LIMITS = {
    "MAX_PARAM_VAL_LENGTH": 6000,
    "MAX_TAG_VAL_LENGTH": 8000,
    "MAX_ENTITY_KEY_LENGTH": 250,
    "MAX_PARAMS_TAGS_PER_BATCH": 100,
    "MAX_METRICS_PER_BATCH": 1000,
}
_BAD_KEY = re.compile(r"[^\w\-. /]")
ARTIFACT_DIR = "pricelab"


@dataclass
class TrackingOutcome:
    """What happened when a run was logged to MLflow (stored as ``summary.mlflow``).

    ``tracking_uri`` and ``error`` never hold credentials.
    """

    ok: bool
    tracking_uri: str
    experiment: str
    run_id: str | None = None
    experiment_id: str | None = None
    artifact_uri: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @property
    def message(self) -> str:
        """One line for people."""
        if self.ok:
            return (
                f"logged to MLflow run {self.run_id} (experiment '{self.experiment}' "
                f"at {self.tracking_uri})"
            )
        return f"MLflow logging to {self.tracking_uri} failed: {self.error}"


def limits() -> dict[str, int]:
    """MLflow's key, value and batch limits of the installed version."""
    try:
        from mlflow.utils import validation
    except ImportError:  # pragma: no cover - only without mlflow
        return dict(_LIMITS)
    return {k: int(getattr(validation, k, v)) for k, v in _LIMITS.items()}


def _truncate(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _key(key: str, n: int) -> str:
    return _truncate(_BAD_KEY.sub("_", key), n)


def redact_deep(value: Any) -> Any:
    """``value`` with every string in it (nested lists and dicts too) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_deep(v) for v in value]
    return value


def flatten_params(
    params: dict[str, Any], *, max_value: int = 6000, max_key: int = 250
) -> dict[str, str]:
    """Nested parameters as MLflow params: dotted keys, JSON text values, within limits.

    Strings stay as they are; other values (numbers, booleans, None, lists) are JSON
    (``8``, ``true``, ``null``, ``["a", "b"]``); nested dicts become ``outer.inner`` keys.
    Keys keep letters, digits, ``_ - . / space`` (anything else becomes ``_``); keys and
    values longer than the limits are cut and end in ``...``. Secrets (URL user info,
    keys and tokens) are removed.

    Parameters
    ----------
    params : dict
        The run's parameters as stored in the runs table.
    max_value, max_key : int
        MLflow's ``MAX_PARAM_VAL_LENGTH`` and ``MAX_ENTITY_KEY_LENGTH``.
    """
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
            return
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[_key(prefix, max_key)] = _truncate(text, max_value)

    walk("", redact_deep(params))
    return out


def _ms(value: Any) -> int:
    """Epoch milliseconds of a stored (naive UTC) timestamp."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return int(value.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _parent_mlflow_runs(store: Store, parents: list[str]) -> list[str]:
    """MLflow run ids of the parent runs that were logged too."""
    out = []
    for p in parents:
        try:
            summary = get_run(store, p).get("summary") or {}
        except Exception:  # noqa: BLE001 - a missing parent only loses a tag
            continue
        ml = summary.get("mlflow") or {}
        if ml.get("ok") and ml.get("run_id"):
            out.append(str(ml["run_id"]))
    return out


def run_tags(rec: dict[str, Any], parent_mlflow: list[str]) -> dict[str, str]:
    """Tags of the MLflow run: pricelab run id, command, version, fingerprint, git, lineage."""
    tags = {
        "pricelab.run_id": rec["run_id"],
        "pricelab.command": rec["command"],
        "pricelab.status": rec["status"],
        "pricelab.version": rec.get("version") or "",
        "pricelab.input_fingerprint": rec.get("input_fingerprint") or "",
        "mlflow.source.name": f"pricelab {rec['command']}",
    }
    if rec.get("git_commit"):
        tags["pricelab.git_commit"] = tags["mlflow.source.git.commit"] = rec["git_commit"]
    if rec.get("parents"):
        tags["pricelab.parents"] = ",".join(rec["parents"])
    if parent_mlflow:
        tags["pricelab.parent_mlflow_runs"] = ",".join(parent_mlflow)
    tags.update(decision_tags(rec["command"], rec.get("summary") or {}))
    return {k: redact(str(v)) for k, v in tags.items()}


def decision_tags(command: str, summary: dict[str, Any]) -> dict[str, str]:
    """What was decided and why: the gate, a promotion, a monitoring run, a pipeline run."""
    if command == "gate-backtest":
        failed = [c["check"] for c in summary.get("checks") or [] if not c.get("passed")]
        return {
            "pricelab.decision": "passed" if summary.get("passed") else "failed",
            "pricelab.failed_checks": ",".join(failed),
        }
    if command == "promote":
        return {
            "pricelab.decision": str(summary.get("status")),
            "pricelab.reason": str(summary.get("reason") or ""),
            "pricelab.previous_run": str(summary.get("previous_run_id") or ""),
            "pricelab.forced": str(bool(summary.get("forced"))).lower(),
        }
    if command == "monitor":
        alerts = summary.get("alerts") or []
        return {
            "pricelab.decision": "alert" if alerts else "ok",
            "pricelab.alerts": ",".join(alerts),
        }
    if command == "pipeline":
        tags = {
            "pricelab.decision": str(summary.get("status")),
            "pricelab.failed_step": str(summary.get("failed_step") or ""),
            "pricelab.production_run": str(summary.get("production_run") or ""),
        }
        for s in summary.get("steps") or []:
            tags[f"pricelab.step.{s['step']}"] = str(s.get("status"))
        return tags
    return {}


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)] or [[]]


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name))
        except MlflowException:  # created meanwhile by a concurrent job
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        raise ValueError(
            f"MLflow experiment '{name}' is deleted; restore it or choose "
            "another with --mlflow-experiment"
        )
    return str(exp.experiment_id)


def _log(
    store: Store,
    rec: dict[str, Any],
    table: pl.DataFrame | None,
    table_name: str,
    settings: MlflowSettings,
    outcome: TrackingOutcome,
) -> None:
    """Create the MLflow run and log everything; fills ``outcome`` as it goes."""
    require_mlflow(settings)
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    lim = limits()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    outcome.experiment_id = _experiment_id(client, settings.experiment)
    tags = {
        k: _truncate(v, lim["MAX_TAG_VAL_LENGTH"])
        for k, v in run_tags(rec, _parent_mlflow_runs(store, rec.get("parents") or [])).items()
    }
    run = client.create_run(
        outcome.experiment_id,
        start_time=_ms(rec["started_at"]),
        tags=tags,
        run_name=f"{rec['command']}-{rec['run_id']}",
    )
    outcome.run_id = run.info.run_id
    outcome.artifact_uri = redact(run.info.artifact_uri or "")
    try:
        params = [
            Param(k, v)
            for k, v in flatten_params(
                rec.get("parameters") or {},
                max_value=lim["MAX_PARAM_VAL_LENGTH"],
                max_key=lim["MAX_ENTITY_KEY_LENGTH"],
            ).items()
        ]
        ts = _ms(rec["ended_at"])
        metrics = [
            Metric(_key(k, lim["MAX_ENTITY_KEY_LENGTH"]), v, ts, 0)
            for k, v in run_metrics(rec, table).items()
        ]
        for chunk in _chunks(params, lim["MAX_PARAMS_TAGS_PER_BATCH"]):
            client.log_batch(run.info.run_id, params=chunk)
        for chunk in _chunks(metrics, lim["MAX_METRICS_PER_BATCH"]):
            client.log_batch(run.info.run_id, metrics=chunk)
        with tempfile.TemporaryDirectory(prefix="pricelab-mlflow-") as tmp:
            record = {
                k: rec.get(k)
                for k in (
                    "run_id",
                    "command",
                    "status",
                    "parameters",
                    "inputs",
                    "input_fingerprint",
                    "parents",
                    "version",
                    "git_commit",
                    "argv",
                    "started_at",
                    "ended_at",
                    "summary",
                )
            }
            text = json.dumps(redact_deep(record), indent=2, sort_keys=True, default=str)
            (Path(tmp) / "run.json").write_text(text + "\n")
            if table is not None:
                table.write_parquet(Path(tmp) / f"{table_name}.parquet")
            client.log_artifacts(run.info.run_id, tmp, ARTIFACT_DIR)
        client.set_terminated(run.info.run_id, "FINISHED")
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            client.set_terminated(run.info.run_id, "FAILED")
        raise


def _record(store: Store, run_id: str, outcome: TrackingOutcome) -> None:
    """Write the outcome into the run's summary; remove credentials from its argv."""
    row = store.execute("SELECT summary, argv FROM runs WHERE run_id = ?", [run_id])[0]
    summary = json.loads(row[0]) if row[0] else {}
    summary["mlflow"] = outcome.to_dict()
    argv = json.dumps(redact_deep(json.loads(row[1]))) if row[1] else row[1]
    store.execute(
        "UPDATE runs SET summary = ?, argv = ? WHERE run_id = ?",
        [json.dumps(summary, sort_keys=True, default=str), argv, run_id],
    )


def log_run(
    store: Store,
    run_id: str | None,
    table: pl.DataFrame | None,
    settings: MlflowSettings | None,
    *,
    table_name: str = "result",
) -> TrackingOutcome | None:
    """Log stored run ``run_id`` to MLflow and record the MLflow run id in its summary.

    Parameters
    ----------
    store : Store
        The open, writable database the run was committed to.
    run_id : str or None
        The pricelab run; nothing is logged when None (a run that was not stored).
    table : polars.DataFrame or None
        The run's main result, logged as ``pricelab/<table_name>.parquet`` next to
        ``pricelab/run.json`` (the run record).
    settings : MlflowSettings or None
        Where to log; None means tracking is off (returns None).
    table_name : str
        Artifact name of ``table`` (``elasticities``, ``plans``, ``scenarios``).

    Returns
    -------
    TrackingOutcome or None
        ``ok`` with the MLflow run id, or the (credential-free) error.

    Raises
    ------
    UsageError
        MLflow is not installed (raised before anything is logged).
    CheckFailed
        Logging failed and ``settings.strict`` is set; the pricelab run stays stored.
    """
    if settings is None or run_id is None:
        return None
    require_mlflow(settings)
    outcome = TrackingOutcome(
        ok=False, tracking_uri=settings.display_uri, experiment=settings.experiment
    )
    rec = get_run(store, run_id)
    try:
        with warnings.catch_warnings():
            # deprecation notices from MLflow's own dependencies (e.g. SQLAlchemy 2.1)
            warnings.simplefilter("ignore", DeprecationWarning)
            _log(store, rec, table, table_name, settings, outcome)
        outcome.ok = True
    except Exception as exc:  # noqa: BLE001 - any MLflow failure must not lose the run
        first = (str(exc).strip().splitlines() or [""])[0]
        outcome.error = redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
        if settings.tracking_uri != settings.display_uri:
            outcome.error = outcome.error.replace(settings.tracking_uri, settings.display_uri)
    _record(store, run_id, outcome)
    if not outcome.ok and settings.strict:
        raise CheckFailed(
            f"{outcome.message}; pricelab run {run_id} is stored "
            "(drop --strict-tracking to continue past tracking failures)"
        )
    return outcome
