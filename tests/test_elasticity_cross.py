"""``estimate --model cross``: a known matrix, statsmodels dummy regressions, the CLI.

Real data (Dominick's orange juice, every brand's price in every store-week) is in
tests/test_elasticity_cross_oj.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity.cross import CROSS_COLUMNS, estimate_cross
from pricelab.errors import UsageError

TRUE = np.array([[-2.5, 0.8, 0.4], [0.6, -3.0, 0.9], [0.3, 0.5, -2.0]])


def synthetic(markets: int = 4, weeks: int = 80, seed: int = 1, noise: float = 0.1):
    """Three substitutes in one category, log-linear demand with matrix TRUE (+ promo)."""
    rng = np.random.default_rng(seed)
    n = markets * weeks
    lp = np.log(100) + rng.normal(0, 0.15, (n, 3))
    promo = (rng.random((n, 3)) < 0.2).astype(int)
    lq = np.log(2000) + (lp - np.log(100)) @ TRUE.T + 0.3 * promo + rng.normal(0, noise, (n, 3))
    m = np.repeat(np.arange(markets), weeks)
    t = np.tile(np.arange(weeks), markets)
    d0 = dt.date(2024, 1, 1)
    rows = {
        "item_id": np.repeat([["I0", "I1", "I2"]], n, axis=0).ravel(),
        "market": np.repeat([f"M{k}" for k in m], 3),
        "date": pl.Series([d0 + dt.timedelta(weeks=int(k)) for k in t for _ in range(3)]),
        "price": np.exp(lp).ravel(),
        "quantity": np.round(np.exp(lq)).astype(np.int64).ravel(),
        "promo": promo.ravel(),
    }
    items = pl.DataFrame({"item_id": ["I0", "I1", "I2"], "category": ["bags"] * 3})
    return pl.DataFrame(rows), items


def wide(sales: pl.DataFrame) -> pl.DataFrame:
    p = sales.pivot(on="item_id", index=["market", "date"], values="price")
    q = sales.pivot(on="item_id", index=["market", "date"], values="quantity")
    pr = sales.pivot(on="item_id", index=["market", "date"], values="promo")
    return p.join(q, on=["market", "date"], suffix="_q").join(
        pr, on=["market", "date"], suffix="_promo"
    )


def test_known_matrix_recovered_per_market():
    sales, items = synthetic(noise=0.05)
    res = estimate_cross(sales, items=items, controls=["promo"])
    c = res.cross
    assert c.columns[: len(CROSS_COLUMNS)] == CROSS_COLUMNS
    assert c.height == 4 * 9 and (c["method"] == "cross").all()
    idx = {"I0": 0, "I1": 1, "I2": 2}
    truth = np.array(
        [TRUE[idx[i], idx[j]] for i, j in zip(c["item_id"], c["other_item_id"], strict=True)]
    )
    z = (c["elasticity"].to_numpy() - truth) / c["std_error"].to_numpy()
    assert np.abs(z).max() < 4.5
    assert abs(np.mean(c["elasticity"].to_numpy() - truth)) < 0.02
    # own rows are the elasticities table every consumer reads
    own = res.elasticities.sort("item_id", "market")
    diag = c.filter(pl.col("item_id") == pl.col("other_item_id")).sort("item_id", "market")
    assert np.allclose(own["elasticity"].to_numpy(), diag["elasticity"].to_numpy())
    m = res.matrix("M0")
    assert m.columns == ["item_id", "I0", "I1", "I2"]


def test_per_market_matches_statsmodels_hc1():
    sales, items = synthetic()
    res = estimate_cross(sales, items=items, controls=["promo", "trend"])
    w = wide(sales).filter(pl.col("market") == "M2").sort("date")
    d0 = sales["date"].min()
    trend = np.array([(d - d0).days / 365.25 for d in w["date"].to_list()])
    X = np.column_stack(
        [np.ones(w.height), np.log(w["I1"]), np.log(w["I0"]), np.log(w["I2"]), w["I1_promo"], trend]
    )
    fit = sm.OLS(np.log(w["I1_q"].to_numpy()), X).fit(cov_type="HC1")
    got = res.cross.filter((pl.col("item_id") == "I1") & (pl.col("market") == "M2"))
    e = dict(zip(got["other_item_id"], got["elasticity"], strict=True))
    s = dict(zip(got["other_item_id"], got["std_error"], strict=True))
    for name, j in (("I1", 1), ("I0", 2), ("I2", 3)):
        assert e[name] == pytest.approx(fit.params[j], abs=1e-8)
        assert s[name] == pytest.approx(fit.bse[j], rel=1e-6)


def test_pooled_matches_statsmodels_dummies_clustered_by_market():
    sales, items = synthetic(markets=5, weeks=40)
    res = estimate_cross(sales, items=items, by="item_id", controls=["promo"])
    w = wide(sales).sort("market", "date")
    dm = pd_dummies(w["market"]) + pd_dummies(w["date"].cast(pl.String))
    X = np.column_stack(
        [np.ones(w.height), np.log(w["I2"]), np.log(w["I0"]), np.log(w["I1"]), w["I2_promo"], *dm]
    )
    groups = w["market"].rank("dense").to_numpy()
    fit = sm.OLS(np.log(w["I2_q"].to_numpy()), X).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    got = res.cross.filter(pl.col("item_id") == "I2")
    assert got["market"].is_null().all() and (got["n_obs"] == w.height).all()
    e = dict(zip(got["other_item_id"], got["elasticity"], strict=True))
    s = dict(zip(got["other_item_id"], got["std_error"], strict=True))
    for name, j in (("I2", 1), ("I0", 2), ("I1", 3)):
        assert e[name] == pytest.approx(fit.params[j], abs=1e-7)
        assert s[name] == pytest.approx(fit.bse[j], rel=1e-5)


def pd_dummies(col: pl.Series) -> list[np.ndarray]:
    """Dummy columns for every level but the first."""
    levels = col.unique().sort().to_list()
    v = col.to_numpy()
    return [(v == lv).astype(float) for lv in levels[1:]]


def test_index_mode_matches_statsmodels():
    sales, items = synthetic()
    res = estimate_cross(sales, items=items, cross="index", controls=None)
    w = wide(sales).filter(pl.col("market") == "M0").sort("date")
    index = (np.log(w["I1"]) + np.log(w["I2"])) / 2
    X = np.column_stack([np.ones(w.height), np.log(w["I0"]), index])
    fit = sm.OLS(np.log(w["I0_q"].to_numpy()), X).fit(cov_type="HC1")
    got = res.cross.filter((pl.col("item_id") == "I0") & (pl.col("market") == "M0"))
    assert (got["method"] == "cross-index").all()
    e = dict(zip(got["other_item_id"], got["elasticity"], strict=True))
    assert e["I0"] == pytest.approx(fit.params[1], abs=1e-8)
    # one index coefficient, spread over the two siblings (d log index / d log p_j = 1/2)
    assert e["I1"] == pytest.approx(fit.params[2] / 2, abs=1e-8)
    assert e["I2"] == pytest.approx(fit.params[2] / 2, abs=1e-8)


def test_missing_sibling_price_weeks_are_dropped_and_counted():
    sales, items = synthetic(markets=2, weeks=40)
    gone = (pl.col("item_id") == "I1") & (pl.col("market") == "M0")
    gone = gone & (pl.col("date") < dt.date(2024, 3, 1))  # 9 weeks of I1 missing in M0
    cut = sales.filter(~gone)
    res = estimate_cross(cut, items=items, controls=None)
    c = res.cross
    i0 = c.filter((pl.col("item_id") == "I0") & (pl.col("market") == "M0"))
    assert (i0["n_dropped"] == 9).all() and (i0["n_obs"] == 31).all()
    assert (c.filter(pl.col("market") == "M1")["n_dropped"] == 0).all()
    assert res.parameters["n_dropped"] == 2 * 9  # I0 and I2 in M0


def test_items_without_siblings_and_bad_options():
    sales, items = synthetic(markets=1, weeks=30)
    solo = items.with_columns(pl.Series("category", ["a", "b", "c"]))
    res = estimate_cross(sales, items=solo, controls=None)
    assert (res.cross["item_id"] == res.cross["other_item_id"]).all()
    with pytest.raises(UsageError, match="category"):
        estimate_cross(sales, items=None)
    with pytest.raises(UsageError, match="full or index"):
        estimate_cross(sales, items=items, cross="matrix")
    with pytest.raises(UsageError, match="item_id,market or item_id"):
        estimate_cross(sales, items=items, by="market")


def _db(tmp_path: Path, cli) -> Path:
    sales, items = synthetic(markets=2, weeks=40)
    sales.write_csv(tmp_path / "sales.csv")
    items.write_csv(tmp_path / "items.csv")
    db = tmp_path / "x.duckdb"
    r = cli(
        "ingest", "--db", db, "--sales", tmp_path / "sales.csv", "--items", tmp_path / "items.csv"
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    return db


def test_cli_cross_run_output_json_and_runs_show(tmp_path, cli):
    db = _db(tmp_path, cli)
    out = tmp_path / "cross.csv"
    r = cli("estimate", "--db", db, "--model", "cross", "--output", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "bags (market M0)" in r.stdout and "significant substitutes" in r.stdout
    t = pl.read_csv(out)
    assert t.columns[:9] == CROSS_COLUMNS and t.height == 2 * 9
    r = cli(
        "estimate", "--db", db, "--model", "cross", "--cross", "index", "--by", "item_id", "--json"
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["model"] == "cross" and d["cross"]["mode"] == "index" and d["cross"]["pairs"] == 6
    shown = json.loads(cli("runs", "show", d["run_id"], "--db", db, "--json").stdout)
    assert shown["parameters"]["model"] == "cross" and shown["summary"]["cross"]["pairs"] == 6
    r = cli("estimate", "--db", db, "--model", "poisson", "--cross", "full")
    assert r.exit_code == 2 and "--model cross" in r.stdout + r.stderr
