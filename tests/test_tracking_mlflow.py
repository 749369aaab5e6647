"""MLflow tracking against a real local MLflow store (skipped without pricelab[mlflow]).

One module-scoped store (sqlite:///…/mlflow.db, created once: MLflow's migrations take a
few seconds) holds estimate → optimize → simulate runs made by the real CLI on the bundled
sample; the tests read them back with ``MlflowClient`` and check every number against the
result files the same commands wrote (``--output``), recomputed here with numpy.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import pricelab
from pricelab import api
from pricelab._resources import sample_dir
from pricelab.cli.app import app
from pricelab.errors import ConfigError, UsageError
from pricelab.store import Store
from pricelab.tracking import MlflowSettings, flatten_params, resolve_mlflow

# checked without importing (MLflow takes seconds to import); the missing-package and
# settings tests run either way
HAVE_MLFLOW = all(importlib.util.find_spec(m) for m in ("mlflow", "sqlalchemy", "alembic"))
needs_mlflow = pytest.mark.skipif(not HAVE_MLFLOW, reason="pricelab[mlflow] is not installed")

SECRET = "s3cr3t-Pa55"
ARGV_SECRET = "SIGSECRET123"
GATE_FLAGS = {"positive", "no_price_variation", "weak_instrument"}


def _invoke(*args: object) -> Any:
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res


def _quiet_env(mp: pytest.MonkeyPatch) -> None:
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    for var in ("PRICELAB_MLFLOW", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "PRICELAB_DB"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Estimate, optimize and simulate on the sample, each logged to one MLflow store."""
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    subprocess.run([*git, "-C", str(tmp), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(
        ["git", "-C", str(tmp), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    db, uri = tmp / "p.duckdb", f"sqlite:///{tmp / 'mlflow.db'}"
    out: dict[str, Any] = {"tmp": tmp, "db": db, "uri": uri, "commit": commit}
    with pytest.MonkeyPatch.context() as mp:
        _quiet_env(mp)
        mp.chdir(tmp)  # the default artifact root ./mlruns lands here
        api.ingest(db, **api.sample_files())
        # the command line as a shell would pass it: a secret in it must not be logged
        mp.setattr(
            sys, "argv", ["pricelab", "estimate", "--source", f"az://c/s.parquet?sig={ARGV_SECRET}"]
        )
        res = _invoke(
            "estimate",
            "--db",
            db,
            "--mlflow",
            "--mlflow-uri",
            uri,
            "--mlflow-experiment",
            "weekly",
            "--json",
            "--output",
            tmp / "e.parquet",
        )
        assert res.exit_code == 0, res.stderr
        out["estimate"] = json.loads(res.stdout)
        out["estimate_stderr"] = res.stderr
        res = _invoke(
            "optimize",
            "--db",
            db,
            "--constraints",
            sample_dir() / "constraints.yaml",
            "--mlflow-uri",
            uri,
            "--mlflow-experiment",
            "weekly",
            "--json",
            "--output",
            tmp / "plan.parquet",
        )
        assert res.exit_code == 0, res.stderr
        out["optimize"] = json.loads(res.stdout)
        # simulate is switched on by the environment alone
        mp.setenv("PRICELAB_MLFLOW", "1")
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "weekly")
        res = _invoke(
            "simulate",
            "--db",
            db,
            "--scenario",
            sample_dir() / "scenario.yaml",
            "--draws",
            200,
            "--json",
            "--output",
            tmp / "sim.parquet",
        )
        assert res.exit_code == 0, res.stderr
        out["simulate"] = json.loads(res.stdout)
    out["client"] = MlflowClient(tracking_uri=uri)
    return out


def _mlflow_run(tracked: dict[str, Any], command: str) -> Any:
    doc = tracked[command]
    stored = api.run(tracked["db"], doc["run_id"])
    assert stored["summary"]["mlflow"]["ok"] is True
    assert stored["summary"]["mlflow"]["run_id"] == doc["mlflow"]["run_id"]
    run = tracked["client"].get_run(doc["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert (
        run.info.experiment_id == tracked["client"].get_experiment_by_name("weekly").experiment_id
    )
    return run


def _leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _artifact(tracked: dict[str, Any], run_id: str, name: str) -> Path:
    return Path(
        tracked["client"].download_artifacts(
            run_id, f"pricelab/{name}", str(tracked["tmp"] / run_id)
        )
    )


@needs_mlflow
def test_estimate_params_metrics_tags_artifacts(tracked):
    run = _mlflow_run(tracked, "estimate")
    stored = api.run(tracked["db"], tracked["estimate"]["run_id"])
    p = run.data.params
    assert set(p) == set(_leaves(stored["parameters"]))
    assert p["model"] == "hierarchical" and p["by"] == "null" and p["instrument"] == "null"
    assert p["fit.se"] == "cluster" and p["fit.min_obs"] == "8"
    assert json.loads(p["fit.by"]) == ["item_id", "market"]
    # metrics recomputed from the --output file
    t = pl.read_parquet(tracked["tmp"] / "e.parquet")
    e, se = t["elasticity"].to_numpy(), t["std_error"].to_numpy()
    ok = ~np.isnan(e)
    flagged = [bool(set((f or "").split(",")) & GATE_FLAGS) for f in t["flags"].to_list()]
    m = run.data.metrics
    assert m["groups"] == t.height and m["estimated"] == ok.sum()
    assert m["median_elasticity"] == pytest.approx(np.median(e[ok]), rel=1e-12)
    assert m["median_std_error"] == pytest.approx(np.median(se[ok & np.isfinite(se)]), rel=1e-12)
    assert m["share_flagged"] == pytest.approx(np.mean(flagged), abs=1e-12)
    tags = run.data.tags
    assert tags["pricelab.run_id"] == stored["run_id"]
    assert tags["pricelab.command"] == "estimate"
    assert tags["pricelab.version"] == pricelab.__version__
    assert tags["pricelab.input_fingerprint"] == stored["input_fingerprint"]
    assert tags["pricelab.git_commit"] == tags["mlflow.source.git.commit"] == tracked["commit"]
    assert tags["mlflow.runName"] == f"estimate-{stored['run_id']}"
    assert "pricelab.parents" not in tags
    # artifacts: the result table and the run record
    got = pl.read_parquet(_artifact(tracked, run.info.run_id, "elasticities.parquet"))
    assert got.equals(t)
    record = json.loads(_artifact(tracked, run.info.run_id, "run.json").read_text())
    assert record["run_id"] == stored["run_id"] and record["inputs"] == stored["inputs"]
    assert "logged to MLflow run " + run.info.run_id in tracked["estimate_stderr"]


@needs_mlflow
def test_optimize_metrics_match_plan_and_lineage_tags(tracked):
    run = _mlflow_run(tracked, "optimize")
    doc = tracked["optimize"]
    plan = pl.read_parquet(tracked["tmp"] / "plan.parquet")
    fx = plan["fx_rate"].to_numpy()
    objective = float(np.sum(plan["expected_profit"].to_numpy() / fx))
    baseline = float(np.sum(plan["baseline_profit"].to_numpy() / fx))
    m = run.data.metrics
    assert m["objective"] == pytest.approx(objective, rel=1e-9)
    assert m["baseline_objective"] == pytest.approx(baseline, rel=1e-9)
    assert m["uplift_pct"] == pytest.approx(100 * (objective / baseline - 1), rel=1e-9)
    assert m["rows"] == plan.height
    assert m["gap"] == doc["gap"] and m["skipped_rows"] == len(doc["skipped"])
    p = run.data.params
    assert p["constraints_content.bounds.max_increase_pct"] == "15"
    assert p["estimates"] == tracked["estimate"]["run_id"] and p["draws"] == "null"
    tags = run.data.tags
    assert tags["pricelab.parents"] == tracked["estimate"]["run_id"]
    assert tags["pricelab.parent_mlflow_runs"] == tracked["estimate"]["mlflow"]["run_id"]
    got = pl.read_parquet(_artifact(tracked, run.info.run_id, "plans.parquet"))
    assert got.equals(plan)


@needs_mlflow
def test_simulate_per_scenario_deltas(tracked):
    run = _mlflow_run(tracked, "simulate")
    rows = pl.read_parquet(tracked["tmp"] / "sim.parquet")
    m = run.data.metrics
    names = rows["scenario"].unique(maintain_order=True).to_list()
    assert m["scenarios"] == len(names) == 3 and m["rows"] == rows.height
    for name in names:
        r = rows.filter(pl.col("scenario") == name)
        fx = r["fx_rate"].to_numpy()
        for k in ("profit", "revenue"):
            new = float(np.sum(r[f"scenario_{k}"].to_numpy() / fx))
            old = float(np.sum(r[f"baseline_{k}"].to_numpy() / fx))
            assert m[f"{name}/{k}_delta"] == pytest.approx(new - old, rel=1e-9, abs=1e-6)
            assert m[f"{name}/{k}_delta_pct"] == pytest.approx(
                100 * (new / old - 1), rel=1e-9, abs=1e-12
            )
    tags = run.data.tags
    assert (
        tags["pricelab.parents"] == f"{tracked['estimate']['run_id']},"
        f"{tracked['optimize']['run_id']}"
    )
    assert json.loads(run.data.params["scenario.scenarios"])[0]["name"] == names[0]
    assert {a.path for a in tracked["client"].list_artifacts(run.info.run_id, "pricelab")} == {
        "pricelab/run.json",
        "pricelab/scenarios.parquet",
    }


@needs_mlflow
def test_no_secret_from_the_command_line_is_logged(tracked):
    stored = api.run(tracked["db"], tracked["estimate"]["run_id"])
    assert stored["argv"][-1] == "az://c/s.parquet?sig=***"
    record = _artifact(tracked, tracked["estimate"]["mlflow"]["run_id"], "run.json").read_text()
    assert "az://c/s.parquet?sig=***" in record and ARGV_SECRET not in record


@needs_mlflow
def test_params_are_flattened_within_mlflow_limits(tracked):
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    params = {
        "long": "x" * (MAX_PARAM_VAL_LENGTH + 50),
        "n": {"a": 1, "b": [1, 2], "c": None, "d": {}},
        "bad key!": True,
        "url": "http://bob:pw1234@host/x?token=abcdef",
    }
    flat = flatten_params(params, max_value=MAX_PARAM_VAL_LENGTH)
    assert flat["long"] == "x" * (MAX_PARAM_VAL_LENGTH - 3) + "..."
    assert flat["n.a"] == "1" and flat["n.b"] == "[1, 2]" and flat["n.c"] == "null"
    assert flat["n.d"] == "{}" and flat["bad key_"] == "true"
    assert flat["url"] == "http://***@host/x?token=***"
    # the real store accepts them as they are
    client = tracked["client"]
    exp = client.get_experiment_by_name("weekly").experiment_id
    run = client.create_run(exp)
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in flat.items()])
    assert client.get_run(run.info.run_id).data.params == flat


# -- errors: missing package, failing store, unusable settings ---------------------------------
@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    _quiet_env(monkeypatch)
    return monkeypatch


def _runs(db: Path) -> int:
    with Store.open(db, read_only=True) as store:
        return int(store.execute("SELECT count(*) FROM runs WHERE command = 'estimate'")[0][0])


def test_missing_mlflow_is_a_usage_error_before_anything_runs(loaded_db, cli, quiet):
    quiet.setitem(sys.modules, "mlflow", None)  # `import mlflow` now raises ImportError
    with pytest.raises(UsageError) as err:
        api.estimate(loaded_db, model="ols", mlflow=True)
    assert str(err.value) == (
        "--mlflow needs the MLflow client: install pricelab[mlflow] "
        "(pip install 'pricelab[mlflow]')"
    )
    res = cli("estimate", "--db", loaded_db, "--model", "ols", "--mlflow")
    assert res.exit_code == 2
    assert "error: --mlflow needs the MLflow client: install pricelab" in res.stderr
    quiet.setenv("PRICELAB_MLFLOW", "1")
    res = cli("estimate", "--db", loaded_db, "--model", "ols")
    assert res.exit_code == 2 and "needs the MLflow client" in res.stderr
    assert _runs(loaded_db) == 0
    res = cli("estimate", "--db", loaded_db, "--model", "ols", "--no-mlflow")
    assert res.exit_code == 0, res.stderr
    assert _runs(loaded_db) == 1


@needs_mlflow
def test_sql_store_needs_sqlalchemy(quiet):
    quiet.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(
        UsageError,
        match=r"sqlite:///x.db: MLflow's SQL store needs "
        r"SQLAlchemy and Alembic: install pricelab\[mlflow\]",
    ):
        resolve_mlflow("sqlite:///x.db")
    assert resolve_mlflow("http://127.0.0.1:9") == MlflowSettings("http://127.0.0.1:9")


def test_missing_mlflow_cli_message_names_the_extra(loaded_db, cli, quiet):
    quiet.setitem(sys.modules, "mlflow", None)
    res = cli("estimate", "--db", loaded_db, "--model", "ols", "--mlflow")
    assert "install pricelab[mlflow] (pip install 'pricelab[mlflow]')" in res.stderr


@needs_mlflow
def test_failing_store_keeps_the_run_and_leaks_no_credentials(loaded_db, cli, quiet):
    uri = f"http://alice:{SECRET}@127.0.0.1:9"  # nothing listens on the discard port
    res = cli("estimate", "--db", loaded_db, "--model", "ols", "--mlflow-uri", uri, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["mlflow"]["ok"] is False and doc["mlflow"]["run_id"] is None
    assert doc["mlflow"]["tracking_uri"] == "http://***@127.0.0.1:9"
    assert "warning: MLflow logging to http://***@127.0.0.1:9 failed:" in res.stderr
    assert "Connection refused" in res.stderr and "the pricelab run is stored" in res.stderr
    stored = api.run(loaded_db, doc["run_id"])
    assert stored["summary"]["mlflow"] == doc["mlflow"] and stored["summary"]["groups"] == 4
    res = cli(
        "estimate", "--db", loaded_db, "--model", "ols", "--mlflow-uri", uri, "--strict-tracking"
    )
    assert res.exit_code == 1
    assert "error: MLflow logging to http://***@127.0.0.1:9 failed" in res.stderr
    assert _runs(loaded_db) == 2  # both runs are stored
    with Store.open(loaded_db, read_only=True) as store:
        dump = store.query("SELECT * FROM runs").write_csv()
    assert SECRET not in dump + res.stdout + res.stderr + json.dumps(doc)


def test_unusable_settings(tmp_path, cli, quiet):
    demand = tmp_path / "d.csv"
    demand.write_text(
        "item_id,market,elasticity,base_price,base_quantity,unit_cost\nA,US,-2,100,10,40\n"
    )
    res = cli("optimize", "--demand", demand, "--mlflow")
    assert res.exit_code == 2
    assert "--mlflow logs stored runs: add --db to store this plan" in res.stderr
    quiet.setenv("PRICELAB_MLFLOW", "maybe")
    res = cli("optimize", "--demand", demand)
    assert res.exit_code == 2 and "$PRICELAB_MLFLOW='maybe': use 1" in res.stderr
    with pytest.raises(ConfigError, match="mlflow: unknown key 'uri'"):
        resolve_mlflow({"uri": "x"})
    with pytest.raises(ConfigError, match="mlflow.strict: expected true or false"):
        resolve_mlflow({"strict": "yes"})
    got = resolve_mlflow({"tracking_uri": "sqlite:///x.db", "experiment": "e", "strict": True})
    assert got == MlflowSettings("sqlite:///x.db", "e", True)
    assert resolve_mlflow(False) is None
    with pytest.raises(UsageError, match="expected True/False"):
        resolve_mlflow(3)
