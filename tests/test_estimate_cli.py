"""``pricelab estimate`` through the CLI on the bundled sample (known true elasticities)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.store import Store
from tests.conftest import copy_db

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory, sample_template: Path) -> Path:
    return copy_db(sample_template, tmp_path_factory.mktemp("est") / "sample.duckdb")


def _truth() -> pl.DataFrame:
    return pl.read_csv(REPO / "data" / "sample" / "true_elasticities.csv").select(
        "item_id", "market", pl.col("elasticity").alias("true")
    )


def test_default_model_recovers_sample_truth(cli, sample_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.parquet"
    res = cli("estimate", "--db", sample_db, "--json", "--output", out)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["model"] == "hierarchical" and doc["groups"] == doc["estimated"]
    est = pl.read_parquet(out)
    assert {
        "item_id",
        "market",
        "elasticity",
        "std_error",
        "ci_low",
        "ci_high",
        "n_obs",
        "method",
        "n_zero",
        "price_variation",
        "flags",
        "category",
    } <= set(est.columns)
    joined = est.join(_truth(), on=["item_id", "market"])
    assert joined.height == est.height
    mae = joined.select((pl.col("elasticity") - pl.col("true")).abs().mean()).item()
    cover = joined.select(
        ((pl.col("ci_low") <= pl.col("true")) & (pl.col("true") <= pl.col("ci_high"))).mean()
    ).item()
    assert mae < 0.4
    assert cover >= 0.9
    # the run is stored with its results
    with Store.open(sample_db, read_only=True) as s:
        stored = s.read_result("elasticities", doc["run_id"])
        assert stored.height == est.height
        run = s.query("SELECT command, status FROM runs WHERE run_id = ?", [doc["run_id"]])
        assert run.rows() == [("estimate", "ok")]


def test_pooling_beats_per_item_poisson_on_sparse_sample(sample_db: Path) -> None:
    truth = _truth()
    mae = {}
    for model in ("poisson", "hierarchical"):
        est = api.estimate(sample_db, model=model).elasticities.join(
            truth, on=["item_id", "market"]
        )
        # poisson reports NaN (flag failed/separated) where a series cannot identify e
        est = est.filter(pl.col("elasticity").is_finite())
        mae[model] = est.select((pl.col("elasticity") - pl.col("true")).abs().mean()).item()
    assert mae["hierarchical"] < 0.6 * mae["poisson"]


@pytest.mark.parametrize("model", ["ols", "poisson", "panel", "iv"])
def test_every_model_runs_from_cli(cli, sample_db: Path, model: str) -> None:
    args = ["estimate", "--db", sample_db, "--model", model, "--json"]
    if model == "iv":
        args += ["--instrument", "hausman"]
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["model"] == model


def test_bad_estimate_options(cli, sample_db: Path, tmp_path: Path) -> None:
    res = cli("estimate", "--db", sample_db, "--by", "colour")
    assert res.exit_code == 2
    assert res.stderr == "error: unknown --by column 'colour' (not in sales or items)\n"
    res = cli("estimate", "--db", sample_db, "--model", "iv", "--instrument", "freight")
    assert res.exit_code == 2
    assert res.stderr == "error: unknown instrument column 'freight' (not in sales)\n"
    res = cli("estimate", "--db", sample_db, "--model", "magic")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: unknown model 'magic'; choose one of ")
    empty = tmp_path / "empty.duckdb"
    api.ingest(empty, items=api.sample_files()["items"])
    res = cli("estimate", "--db", empty)
    assert res.exit_code == 2
    assert "no sales loaded" in res.stderr


def test_hac_standard_errors_from_cli(cli, sample_db: Path, tmp_path: Path) -> None:
    out_hc1, out_hac = tmp_path / "hc1.csv", tmp_path / "hac.csv"
    assert cli("estimate", "--db", sample_db, "--model", "ols", "--output", out_hc1).exit_code == 0
    res = cli(
        "estimate",
        "--db",
        sample_db,
        "--model",
        "ols",
        "--se",
        "HAC",
        "--hac-lags",
        2,
        "--output",
        out_hac,
    )
    assert res.exit_code == 0, res.stderr
    a, b = pl.read_csv(out_hc1), pl.read_csv(out_hac)
    # same point estimates, different (autocorrelation-robust) standard errors
    assert a["elasticity"].to_list() == pytest.approx(b["elasticity"].to_list(), nan_ok=True)
    assert (a["std_error"] - b["std_error"]).abs().max() > 1e-6
