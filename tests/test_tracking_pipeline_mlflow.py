"""The pipeline's decisions in MLflow (real local store, skipped without pricelab[mlflow]):
the gate's backtest, the promotion and the refusal with its reason, the monitoring outcome
and the pipeline run, each checked against what the pipeline itself reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pricelab import api
from pricelab.elasticity.synthetic import simulate_panel
from tests.test_tracking_mlflow import _quiet_env, needs_mlflow

pytestmark = needs_mlflow


def _runs(client: Any, experiment: str) -> dict[str, Any]:
    """MLflow runs of ``experiment`` by pricelab run id."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=500)
    return {r.data.tags["pricelab.run_id"]: r for r in runs}


def test_gate_promotion_refusal_and_monitor_are_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    _quiet_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns
    sales, items, _ = simulate_panel(n_items=12, weeks=60, seed=3, base_units=8)
    (tmp_path / "in").mkdir()
    sales.write_csv(tmp_path / "in" / "sales.csv")
    items.write_csv(tmp_path / "in" / "items.csv")
    (tmp_path / "c.yaml").write_text("bounds: {max_increase_pct: 10, max_decrease_pct: 10}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def cfg(model: str) -> dict[str, Any]:
        return {
            "inputs": {"folder": str(tmp_path / "in")},
            "estimate": {"model": model},
            "optimize": {"constraints": str(tmp_path / "c.yaml")},
            "monitor": {"as_of": "data", "thresholds": {"plan": {"enabled": False}}},
            "mlflow": {"tracking_uri": uri, "experiment": "nightly"},
        }

    db = tmp_path / "p.duckdb"
    first = api.pipeline(db, config=cfg("poisson"))
    assert first.exit_code == 0, first.message
    client = MlflowClient(tracking_uri=uri)
    runs = _runs(client, "nightly")
    steps = {s.step: s for s in first.steps}
    logged = {
        s: steps[s].run_id for s in ("estimate", "backtest", "promote", "optimize", "monitor")
    }
    assert set(runs) == {*logged.values(), first.run_id}
    assert [e["step"] for e in first.to_dict()["mlflow"]] == [
        "backtest",
        "promote",
        "monitor",
        "pipeline",
    ]
    assert all(e["ok"] for e in first.mlflow)
    assert first.tracking_message == (
        f"logged backtest, promote, monitor, pipeline to MLflow (experiment 'nightly' at {uri})"
    )

    promote = runs[logged["promote"]].data
    details = steps["promote"].details
    assert promote.tags["pricelab.command"] == "promote"
    assert promote.tags["pricelab.decision"] == "promoted"
    assert promote.tags["pricelab.reason"] == details["reason"]
    assert promote.metrics["promoted"] == 1.0 and promote.metrics["forced"] == 0.0
    wape = next(c for c in details["comparison"]["checks"] if c["check"] == "wape")
    assert promote.metrics["wape/candidate"] == pytest.approx(wape["candidate"], rel=1e-12)
    assert promote.metrics["wape/reference"] == pytest.approx(wape["reference"], rel=1e-12)
    assert promote.metrics["wape/passed"] == 1.0

    gate = runs[logged["backtest"]]
    assert gate.data.tags["pricelab.decision"] == "passed"
    assert gate.data.metrics["origins"] == len(steps["backtest"].details["origins"])
    files = {a.path for a in client.list_artifacts(gate.info.run_id, "pricelab")}
    assert files == {"pricelab/run.json", "pricelab/gate_scores.parquet"}

    monitor = runs[logged["monitor"]].data
    assert monitor.tags["pricelab.decision"] == "ok" and monitor.metrics["alerts"] == 0.0
    checks = {c["name"]: c for c in steps["monitor"].details["checks"]}
    assert monitor.metrics["freshness/value"] == checks["freshness"]["value"]
    assert monitor.metrics["freshness/alert"] == 0.0

    pipe = runs[first.run_id].data
    assert pipe.tags["pricelab.step.promote"] == "ok" and pipe.metrics["exit_code"] == 0.0
    parents = set(pipe.tags["pricelab.parent_mlflow_runs"].split(","))
    assert {runs[logged[s]].info.run_id for s in ("promote", "monitor")} <= parents

    # a worse candidate: the refusal and its reason reach MLflow
    second = api.pipeline(db, config=cfg("ols"))
    assert second.exit_code == 0, second.message
    steps = {s.step: s for s in second.steps}
    assert steps["promote"].status == "refused"
    runs = _runs(client, "nightly")
    refused = runs[steps["promote"].run_id].data
    assert refused.tags["pricelab.decision"] == "refused"
    assert refused.tags["pricelab.reason"] == steps["promote"].details["reason"]
    assert "WAPE" in refused.tags["pricelab.reason"]
    assert refused.metrics["promoted"] == 0.0 and refused.metrics["wape/passed"] == 0.0
    assert refused.metrics["wape/candidate"] >= refused.metrics["wape/limit"]
    assert runs[second.run_id].data.tags["pricelab.step.promote"] == "refused"
    assert steps["optimize"].run_id not in {e["pricelab_run"] for e in second.mlflow}


def test_tracking_off_logs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _quiet_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRICELAB_MLFLOW", "1")  # the config's false wins over the environment
    db = tmp_path / "p.duckdb"
    res = api.pipeline(
        db,
        config={
            "inputs": {"folder": "@sample"},
            "estimate": {"model": "ols"},
            "optimize": {"enabled": False},
            "gate": {"enabled": False},
            "monitor": {"enabled": False},
            "mlflow": False,
        },
    )
    assert res.exit_code == 0, res.message
    assert "mlflow" not in res.to_dict() and not (tmp_path / "mlflow.db").exists()
