"""Spark engine against the local engine (same numbers to 1e-8) on a real ``local[2]`` session.

The local engine is itself tested against statsmodels and synthetic truth
(``test_elasticity_*``); here it is the reference. Tests that need Spark are marked
``spark`` and skip when PySpark or Java is missing; the partition logic is also tested
without Spark (``_tasks`` is plain polars/Arrow).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from pricelab import api
from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import get_engine
from pricelab.engines._tasks import PartitionTask, fit_frame
from pricelab.engines.local import read_sales
from pricelab.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for the module (skips without PySpark or Java)."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install 'pricelab[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed (Spark needs Java 17)")
    from pricelab.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    sales = read_sales(SAMPLE / "sales.csv")
    items = pl.read_csv(SAMPLE / "items.csv")
    path = tmp_path_factory.mktemp("spark") / "sales.parquet"
    sales.write_parquet(path)
    return {"sales": sales, "items": items, "path": path}


def assert_same(local: pl.DataFrame, other: pl.DataFrame, tol: float = 1e-8) -> None:
    """Same rows in the same order; numbers within ``tol``; NaN where NaN; text equal."""
    assert local.columns == other.columns
    assert local.height == other.height
    for c in local.columns:
        a, b = local[c], other[c]
        if a.dtype.is_numeric():
            x, y = a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), c
            np.testing.assert_allclose(x, y, rtol=0, atol=tol, equal_nan=True, err_msg=c)
        else:
            assert a.to_list() == b.to_list(), c


def staggered_panel(n_items: int, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Synthetic sales where item ``i`` starts ``i % 7`` weeks late (origins differ)."""
    sales, items, _ = simulate_panel(n_items=n_items, weeks=52, base_units=8.0, seed=seed)
    late = pl.col("item_id").str.slice(1).cast(pl.Int64) % 7
    sales = sales.filter(pl.col("date") >= pl.lit(dt.date(2022, 1, 3)) + pl.duration(weeks=late))
    return sales, items


# -- without Spark: the partition code ------------------------------------------------------
def test_partitions_with_later_start_give_the_global_intercept() -> None:
    sales, items = staggered_panel(60)
    sales = sales.join(items, on="item_id")
    spec = {"model": "poisson", "by": ["item_id", "market"], "controls": "default"}
    local = estimate(sales, **spec)
    ref = local.elasticities.join(
        local.params.rename(
            {c: f"b_{c}" for c in local.params.columns if c not in ("item_id", "market")}
        ),
        on=["item_id", "market"],
    )
    late = pl.col("item_id").str.slice(1).cast(pl.Int64) % 7 > 0
    origin = sales["date"].min()
    parts = [sales.filter(late), sales.filter(~late)]
    fitted = pl.concat([fit_frame(p, spec, origin) for p in parts]).sort("item_id", "market")
    assert_same(ref, fitted)
    # the correction matters: without it the late partition's intercepts move
    raw = fit_frame(parts[0], spec, None).sort("item_id", "market")
    moved = raw.join(ref, on=["item_id", "market"], suffix="_ref")
    assert (moved["b_intercept"] - moved["b_intercept_ref"]).abs().max() > 1e-3


def test_partition_task_joins_arrow_batches_split_inside_groups() -> None:
    sales, items = staggered_panel(20)
    spec = {"model": "ols", "by": ["item_id", "market"], "controls": "default"}
    task = PartitionTask(spec, sales["date"].min(), "fit")
    batches = sales.to_arrow().to_batches(max_chunksize=37)  # groups cut across batches
    out = pl.from_arrow(pa.Table.from_batches(list(task(iter(batches)))))
    ref = estimate(sales, **spec)
    assert_same(ref.elasticities, out.select(ref.elasticities.columns))
    assert list(task(iter([]))) == []


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown engine 'dask'; choose one of local, spark"):
        get_engine("dask")


# -- with Spark ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["ols", "poisson", "hierarchical", "iv", "panel"])
@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_sample_spark_equals_local(spark, sample: dict, model: str) -> None:
    kw: dict = {"model": model, "items": sample["items"]}
    if model == "iv":
        kw["instrument"] = "hausman"
    local = get_engine("local").estimate(sample["sales"], **kw)
    remote = get_engine("spark", spark=spark).estimate(str(sample["path"]), **kw)
    assert remote.elasticities.height == 616
    assert_same(local.elasticities, remote.elasticities)
    # panel absorbs week effects by alternating projections (tolerance 1e-11 relative to
    # the data's scale), converged per pooling level on Spark: intercepts agree to 1e-7
    assert_same(local.params, remote.params, tol=1e-7 if model == "panel" else 1e-8)
    assert remote.parameters["engine"] == "spark"


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_thousands_of_groups_spark_equals_local(spark, tmp_path: Path) -> None:
    from pricelab.engines.spark import estimate_spark

    sales, items = staggered_panel(1500)  # 3000 item x market groups
    path = tmp_path / "sales.parquet"
    sales.write_parquet(path)
    for model in ("ols", "poisson"):
        local = estimate(sales, model=model, items=items)
        out = tmp_path / f"{model}_out"
        table = estimate_spark(
            path, model=model, items=items, partitions=3, spark=spark, output=out
        )
        assert table.height == 3000
        assert_same(local.elasticities, table.select(local.elasticities.columns))
        written = pl.read_parquet(out / "*.parquet").sort("item_id", "market")
        assert_same(table, written)


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_cli_spark_engine_stores_a_run(cli, spark, sample: dict, tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    api.ingest(db, **api.sample_files())
    local = api.estimate(db, model="poisson")
    res = cli(
        "estimate",
        "--engine",
        "spark",
        "--source",
        sample["path"],
        "--db",
        db,
        "--model",
        "poisson",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["groups"] == 616 and doc["run_id"] != local.run_id
    remote = api.runs(db).filter(pl.col("run_id") == doc["run_id"])
    assert remote.height == 1
    from pricelab.store import Store

    with Store.open(db, read_only=True) as s:
        stored = s.read_result("elasticities", doc["run_id"]).sort("item_id", "market")
        params = s.read_result("elasticity_params", doc["run_id"]).sort("item_id", "market")
    ref = local.elasticities.sort("item_id", "market")
    assert_same(ref, stored.select(ref.columns))
    refp = local.results.params.sort("item_id", "market")
    assert_same(refp, params.select(refp.columns))


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_spark_input_errors(cli, spark, sample: dict, tmp_path: Path) -> None:
    res = cli("estimate", "--engine", "spark")
    assert res.exit_code == 2
    assert "--engine spark reads sales from --source" in res.stderr
    res = cli("estimate", "--engine", "spark", "--source", tmp_path / "none.parquet")
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'none.parquet'}: file not found\n"
    bad = tmp_path / "bad.parquet"
    sample["sales"].head(50).with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(0.0).otherwise(pl.col("price")).alias("price")
    ).write_parquet(bad)
    res = cli("estimate", "--engine", "spark", "--source", bad, "--model", "ols")
    assert res.exit_code == 2
    assert res.stderr == "error: sales: column 'price' must be > 0 (3 rows are not)\n"


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_databricks_entry_point(spark, sample: dict, tmp_path: Path, capsys) -> None:
    sys.path.insert(0, str(REPO / "examples" / "databricks"))
    try:
        import run_estimate
    finally:
        sys.path.pop(0)
    items = tmp_path / "items.parquet"
    sample["items"].write_parquet(items)
    out = tmp_path / "elasticities"
    code = run_estimate.main(
        [
            "--source",
            str(sample["path"]),
            "--items",
            str(items),
            "--model",
            "hierarchical",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["groups"] == 616 and doc["engine"] == "spark"
    local = estimate(sample["sales"], model="hierarchical", items=sample["items"]).elasticities
    written = pl.read_parquet(out / "*.parquet").sort("item_id", "market")
    assert_same(local, written.select(local.columns))
    job = json.loads((REPO / "examples" / "databricks" / "spark_estimate_job.json").read_text())
    task = job["tasks"][0]["spark_python_task"]
    assert task["python_file"].endswith("run_estimate.py")
    assert run_estimate.parse(task["parameters"]).engine == "spark"


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_pipeline_runs_estimation_on_spark(spark, tmp_path: Path) -> None:
    """`pipeline run --engine spark`: the estimate step runs on Spark from the database's own
    sales and stores the same numbers as a local estimate of the same data."""
    from pricelab import api
    from pricelab.store import Store

    db = tmp_path / "p.duckdb"
    config = {
        "inputs": {"folder": str(SAMPLE)},
        "gate": {"enabled": False},
        "optimize": {"enabled": False},
        "monitor": {"enabled": False},
    }
    result = api.pipeline(db, config=config, engine="spark")
    assert result.exit_code == 0, result.message
    (est,) = [s for s in result.steps if s.step == "estimate"]
    with Store.open(db, read_only=True) as store:
        spark_table = store.read_result("elasticities", est.run_id)
        params = store.query("SELECT parameters FROM runs WHERE run_id = ?", [est.run_id]).item()
    assert '"engine": "spark"' in params
    local = api.estimate(db).elasticities
    cols = ["item_id", "market", "elasticity", "std_error", "ci_low", "ci_high", "n_obs"]
    assert_same(
        local.select(cols).sort("item_id", "market"),
        spark_table.select(cols).sort("item_id", "market"),
    )


# -- simulate --engine spark: the baseline window aggregated on Spark ------------------------
SCENARIOS = [
    {
        "name": "us-shoes-plus-5",
        "changes": [{"where": {"market": "US", "category": "shoes"}, "price_change_pct": 5}],
    },
    {"name": "all-minus-7", "changes": [{"price_change_pct": -7}]},
]


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample ingested, with a poisson estimate (default controls: Fourier terms, so
    the baseline is seasonality-adjusted)."""
    db = tmp_path_factory.mktemp("spark_sim") / "sim.duckdb"
    api.ingest(db, **api.sample_files())
    api.estimate(db, model="poisson")
    return db


@pytest.mark.parametrize("mode", ["average", "current"])
@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_simulate_spark_equals_local(spark, sample: dict, sim_db: Path, mode: str) -> None:
    from pricelab.simulate import simulate
    from pricelab.store import Store

    scenario = {
        "baseline_weeks": 8,
        "horizon_weeks": 4,
        "baseline_price": mode,
        "scenarios": SCENARIOS,
    }
    with Store.open(sim_db) as store:
        local = simulate(store, scenario, draws=200, seed=5, record=False)
        remote = simulate(
            store,
            scenario,
            draws=200,
            seed=5,
            record=False,
            engine="spark",
            source=str(sample["path"]),
            spark=spark,
        )
    assert local.seasonality["applied"] and local.seasonality["adjusted_rows"] > 400
    assert remote.table.height == 2 * 616
    assert_same(local.table, remote.table)
    assert_same(local.aggregates, remote.aggregates)
    assert remote.window == local.window and remote.seasonality == local.seasonality
    assert remote.warnings == local.warnings


@pytest.mark.spark
@pytest.mark.filterwarnings(PANDAS_WARNING)
def test_cli_simulate_spark_stores_a_run(
    cli, spark, sample: dict, sim_db: Path, tmp_path: Path
) -> None:
    import yaml

    scen = tmp_path / "scenario.yaml"
    scen.write_text(
        yaml.safe_dump({"baseline_weeks": 6, "horizon_weeks": 2, "scenarios": SCENARIOS})
    )
    local = api.simulate(sim_db, scen, draws=100)
    res = cli(
        "simulate",
        "--scenario",
        scen,
        "--engine",
        "spark",
        "--source",
        sample["path"],
        "--db",
        sim_db,
        "--draws",
        "100",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["rows"] == 2 * 616 and doc["run_id"] != local.run_id
    from pricelab.store import Store

    with Store.open(sim_db, read_only=True) as s:
        stored = s.read_result("scenarios", doc["run_id"])
        params = s.query("SELECT parameters FROM runs WHERE run_id = ?", [doc["run_id"]]).item()
    assert '"engine": "spark"' in params
    key = ["scenario", "item_id", "market"]
    ref = local.table.sort(key)
    assert_same(ref, stored.select(ref.columns).sort(key))
    # --engine spark needs --source; --source needs --engine spark
    res = cli("simulate", "--scenario", scen, "--engine", "spark", "--db", sim_db)
    assert res.exit_code == 2
    assert "--engine spark reads the sales history from --source" in res.stderr
    res = cli("simulate", "--scenario", scen, "--source", sample["path"], "--db", sim_db)
    assert res.exit_code == 2
    assert "--source needs --engine spark" in res.stderr
    # a database holding only the estimates (made by estimate --engine spark, no sales)
    only = tmp_path / "estimates_only.duckdb"
    res = cli(
        "estimate", "--engine", "spark", "--source", sample["path"], "--db", only, "--model", "ols"
    )
    assert res.exit_code == 0, res.stderr
    res = cli(
        "simulate",
        "--scenario",
        scen,
        "--engine",
        "spark",
        "--source",
        sample["path"],
        "--db",
        only,
        "--draws",
        "0",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == 2 * 616
