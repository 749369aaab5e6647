"""Published numbers reproduced through the Python API (skipped without ../shared/data)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from pricelab.elasticity import estimate

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.realdata


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(scope="module")
def cig():
    folder = _need(DATA / "cigarettes_sw")
    ref = json.loads((folder / "reference.json").read_text())["checks"]
    df = pl.read_csv(folder / "cigarettes_sw.csv").with_columns(
        item_id=pl.col("state"),
        market=pl.lit("US"),
        price=pl.col("rprice"),
        quantity=pl.col("packs"),
        log_rincome=pl.col("rincome").log(),
        date=pl.date(pl.col("year"), 1, 1),
    )
    return df, ref


def _pooled(res):
    row = res.elasticities.row(0, named=True)
    return row, res.params.row(0, named=True)


@pytest.mark.parametrize(
    "i, instruments, controls",
    [
        (0, "salestax", None),
        (1, "salestax", ["log_rincome"]),
        (2, ["salestax", "cigtax"], ["log_rincome"]),
    ],
)
def test_cigarettes_2sls_1995(cig, i, instruments, controls):
    df, ref = cig
    res = estimate(
        df.filter(pl.col("year") == 1995),
        model="iv",
        by=None,
        instrument=instruments,
        controls=controls,
        min_obs=2,
    )
    row, par = _pooled(res)
    assert row["elasticity"] == pytest.approx(ref[i]["coef"], abs=1e-4)
    assert row["std_error"] == pytest.approx(ref[i]["se"], abs=1e-4)
    if "intercept" in ref[i]:
        assert par["intercept"] == pytest.approx(ref[i]["intercept"], abs=1e-4)
    if "income" in ref[i]:
        assert par["log_rincome"] == pytest.approx(ref[i]["income"], abs=1e-4)
    assert row["first_stage_f"] > 10 and "weak_instrument" not in row["flags"]


@pytest.mark.parametrize(
    "i, instruments", [(3, ["dsalestax"]), (4, ["dcigtax"]), (5, ["dsalestax", "dcigtax"])]
)
def test_cigarettes_2sls_long_differences(cig, i, instruments):
    df, ref = cig
    a = df.filter(pl.col("year") == 1985).sort("state")
    b = df.filter(pl.col("year") == 1995).sort("state")
    # quantity and price as 1995/1985 ratios: their logs are the long differences
    diff = b.select("item_id", "market", "date").with_columns(
        quantity=b["packs"] / a["packs"],
        price=b["rprice"] / a["rprice"],
        dlog_rincome=b["log_rincome"] - a["log_rincome"],
        dsalestax=b["salestax"] - a["salestax"],
        dcigtax=b["cigtax"] - a["cigtax"],
    )
    res = estimate(
        diff, model="iv", by=None, instrument=instruments, controls=["dlog_rincome"], min_obs=2
    )
    row, par = _pooled(res)
    assert row["elasticity"] == pytest.approx(ref[i]["coef"], abs=1e-4)
    assert row["std_error"] == pytest.approx(ref[i]["se"], abs=1e-4)
    assert par["dlog_rincome"] == pytest.approx(ref[i]["income"], abs=1e-4)
    if "intercept" in ref[i]:
        assert par["intercept"] == pytest.approx(ref[i]["intercept"], abs=1e-4)


@pytest.fixture(scope="module")
def oj():
    folder = _need(DATA / "dominicks_oj")
    ref = json.loads((folder / "reference.json").read_text())["checks"]
    df = pl.read_csv(folder / "oj_3brand.csv").with_columns(
        item_id=pl.col("brand"),
        market=pl.col("store").cast(pl.String),
        quantity=pl.col("sales"),
        date=pl.lit(dt.date(1989, 9, 11)) + pl.duration(weeks=pl.col("week")),
        logp_feat=pl.col("price").log() * pl.col("feat_any"),
    )
    return df, ref


def test_oj_pooled_ols(oj):
    df, ref = oj
    res = estimate(df, model="ols", by=None, controls=None)
    assert res.elasticities["elasticity"][0] == pytest.approx(ref[0]["published"], abs=1e-4)
    assert res.elasticities["n_obs"][0] == df.height


def test_oj_brand_fixed_effects(oj):
    df, ref = oj
    res = estimate(
        df, model="ols", by=None, controls=None, fixed_effects=["item_id"], se="nonrobust"
    )
    assert res.elasticities["elasticity"][0] == pytest.approx(ref[1]["published"], abs=1e-4)
    assert res.elasticities["std_error"][0] == pytest.approx(0.0229, abs=1e-4)


def test_oj_slope_by_brand(oj):
    df, ref = oj
    res = estimate(df, model="ols", by="item_id", controls=None)
    got = dict(zip(res.elasticities["item_id"], res.elasticities["elasticity"], strict=True))
    for brand, value in ref[2]["elasticity"].items():
        assert got[brand] == pytest.approx(value, abs=1e-4)


def test_oj_slope_by_brand_and_feature(oj):
    df, ref = oj
    res = estimate(df, model="ols", by="item_id", controls=["feat_any", "logp_feat"])
    p = res.params
    for brand in ("dominicks", "minute.maid", "tropicana"):
        row = p.filter(pl.col("item_id") == brand).row(0, named=True)
        want = ref[3]["elasticity"]
        assert row["log_price"] == pytest.approx(want[f"{brand}|feat=0"], abs=1e-4)
        assert row["log_price"] + row["logp_feat"] == pytest.approx(
            want[f"{brand}|feat=1"], abs=1e-4
        )
