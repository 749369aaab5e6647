"""backtest: on data with known demand the right model ranks first and beats the naive baseline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.errors import UsageError
from pricelab.simulate import backtest
from pricelab.simulate.backtest import interval, poisson_deviance

START = dt.date(2023, 1, 2)


def synthetic(
    n_items: int = 150,
    markets: tuple[str, ...] = ("US", "DE"),
    weeks: int = 70,
    test_weeks: int = 8,
    base: float = 1.0,
    seed: int = 1,
) -> pl.DataFrame:
    """Poisson weekly units, elasticities ~ N(-2.5, 0.4) by item, a ±25% price move at the end.

    Item elasticities share one distribution, which is exactly the structure the
    hierarchical model assumes; ``mu`` is the true expected quantity (the oracle).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_items):
        e = rng.normal(-2.5, 0.4)
        p_item = np.exp(rng.uniform(np.log(200), np.log(2000)))
        for m in markets:
            level = np.repeat(rng.normal(0, 0.12, weeks // 6 + 1), 6)[:weeks]
            level[weeks - test_weeks :] += 0.25 if i % 2 else -0.25
            mu = base * np.exp(e * level)
            frames.append(
                pl.DataFrame(
                    {
                        "item_id": f"I{i:03d}",
                        "market": m,
                        "date": [START + dt.timedelta(weeks=w) for w in range(weeks)],
                        "price": p_item * np.exp(level),
                        "quantity": rng.poisson(mu),
                        "mu": mu,
                    }
                )
            )
    return pl.concat(frames)


def test_interval_and_deviance_reference():
    from scipy import stats

    lo, hi = interval(np.array([4.0]), 1.0)
    assert (lo[0], hi[0]) == (stats.poisson.ppf(0.05, 4.0), stats.poisson.ppf(0.95, 4.0))
    # negative binomial with variance 3 * mean: check moments of the distribution used
    n, p = 4.0 / 2.0, 1.0 / 3.0
    assert stats.nbinom.mean(n, p) == pytest.approx(4.0)
    assert stats.nbinom.var(n, p) == pytest.approx(12.0)
    lo, hi = interval(np.array([4.0]), 3.0)
    assert (lo[0], hi[0]) == (stats.nbinom.ppf(0.05, n, p), stats.nbinom.ppf(0.95, n, p))
    y, mu = np.array([0.0, 2.0, 5.0]), np.array([1.0, 2.0, 3.0])
    ref = np.mean([2 * 1.0, 0.0, 2 * (5 * np.log(5 / 3) - 2)])
    assert poisson_deviance(y, mu) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_hierarchical_ranks_first_and_beats_naive(seed):
    df = synthetic(seed=seed)
    cutoff = START + dt.timedelta(weeks=62)
    res = backtest(
        df.drop("mu"), cutoff=cutoff, horizon_weeks=8, models=("ols", "poisson", "hierarchical")
    )
    overall = res.overall()
    assert res.best() == "hierarchical"
    assert overall["model"].to_list()[-1] == "naive"
    sc = {r["model"]: r for r in overall.iter_rows(named=True)}
    assert sc["hierarchical"]["wape"] < sc["naive"]["wape"]
    assert abs(sc["hierarchical"]["bias_pct"]) < abs(sc["naive"]["bias_pct"])
    # most of the way from the naive forecast to the oracle that knows the true means
    test = df.filter(pl.col("date") >= cutoff)
    oracle = poisson_deviance(test["quantity"].to_numpy().astype(float), test["mu"].to_numpy())
    assert sc["hierarchical"]["deviance"] - oracle < 0.5 * (sc["naive"]["deviance"] - oracle)
    # scores are computed on the same rows for every method, from the stored predictions
    assert overall["n_rows"].n_unique() == 1 and overall["n_rows"][0] == test.height
    p = res.predictions.filter(pl.col("model") == "hierarchical")
    y, f = p["quantity"].to_numpy(), p["predicted"].to_numpy()
    assert sc["hierarchical"]["wape"] == pytest.approx(np.abs(y - f).sum() / y.sum())
    assert 0.8 < sc["hierarchical"]["coverage_90"] <= 1.0


def test_rolling_origins_and_errors():
    df = synthetic(n_items=20, seed=3).drop("mu")
    cutoff = START + dt.timedelta(weeks=62)
    res = backtest(df, cutoff=cutoff, horizon_weeks=4, models=("poisson",), cutoffs=3)
    assert res.parameters["cutoffs"] == ["2024-01-15", "2024-02-12", "2024-03-11"]
    per = res.scores.filter(pl.col("cutoff") != "all")
    assert per.height == 3 * 2
    allp = res.scores.filter((pl.col("cutoff") == "all") & (pl.col("model") == "poisson"))
    assert allp["n_rows"][0] == per.filter(pl.col("model") == "poisson")["n_rows"].sum()
    with pytest.raises(UsageError, match="no history before it"):
        backtest(df, cutoff=START, models=("poisson",))
    with pytest.raises(UsageError, match="unknown model 'xgb'"):
        backtest(df, cutoff=cutoff, models=("xgb",))
    # cross is a model of estimate, but not a per-group fitter: the refusal says why
    with pytest.raises(UsageError) as err:
        backtest(df, cutoff=cutoff, models=("cross",))
    assert str(err.value).startswith(
        "model 'cross': a cross-price model is not a per-group fitter: each item's regression "
        "needs its siblings' prices in the same market and week"
    )
    from pricelab.elasticity import estimate

    with pytest.raises(UsageError, match="^model 'cross': a cross-price model is not a per-gr"):
        estimate(df, model="cross")
    with pytest.raises(UsageError, match="is not a date"):
        backtest(df, cutoff="last tuesday")


def test_cli_backtest_stores_run(tmp_path: Path, cli):
    df = synthetic(n_items=30, seed=4).drop("mu")
    df.write_csv(tmp_path / "sales.csv")
    db = tmp_path / "bt.duckdb"
    api.ingest(db, sales=tmp_path / "sales.csv")
    res = cli(
        "backtest",
        "--db",
        db,
        "--cutoff",
        "2024-03-11",
        "--model",
        "poisson",
        "--model",
        "ols",
        "--cutoffs",
        "2",
        "--output",
        tmp_path / "scores.csv",
    )
    assert res.exit_code == 0, res.stderr
    assert "Backtest over all origins (ranked by deviance" in res.stdout
    assert "deviance by origin" in res.stdout
    scores = pl.read_csv(tmp_path / "scores.csv")
    assert set(scores["model"]) == {"naive", "poisson", "ols"} and scores.height == 9
    js = cli("backtest", "--db", db, "--cutoff", "2024-03-11", "--json", "--model", "poisson")
    doc = json.loads(js.stdout)
    runs = api.runs(db, command="backtest")
    assert runs.height == 2 and doc["run_id"] == runs["run_id"][0]
    bad = cli("backtest", "--db", db, "--cutoff", "2024-13-01")
    assert bad.exit_code == 2 and "cutoff '2024-13-01' is not a date" in bad.stderr
