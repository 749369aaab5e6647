"""Dominick's orange juice: the 11-brand cross-price matrix against statsmodels dummy OLS.

``oj_long.csv`` has every brand's price in every store-week (``price1..price11``), so the
cross regression of one brand is a plain OLS that statsmodels fits with store and week
dummies. Skipped without ``../shared/data``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity.cross import estimate_cross

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dominicks_oj"
pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def oj() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    path = DATA / "oj_long.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    raw = pl.read_csv(path)
    d0 = dt.date(1989, 9, 14)  # week 40 ~ September 1989; only the spacing matters
    sales = raw.select(
        pl.format("B{}", pl.col("brand").cast(pl.String).str.zfill(2)).alias("item_id"),
        pl.col("store").cast(pl.String).alias("market"),
        (pl.lit(d0) + pl.duration(weeks=pl.col("week") - 40)).alias("date"),
        pl.col("price_per_pack").alias("price"),
        pl.col("units").alias("quantity"),
        "deal",
        "feat",
    )
    items = sales.select("item_id").unique().with_columns(category=pl.lit("oj"))
    return raw, sales, items


def _dummies(v: np.ndarray) -> np.ndarray:
    levels = np.unique(v)
    return (v[:, None] == levels[None, 1:]).astype(float)


def test_oj_pooled_row_matches_statsmodels(oj):
    brand = 1  # Tropicana Premium 64 oz (one row: the dummy regression takes ~15 s)
    raw, sales, items = oj
    res = estimate_cross(sales, items=items, by="item_id", controls=["deal", "feat"])
    g = raw.filter(pl.col("brand") == brand).sort("store", "week")
    # the pricelab row uses the same weeks: those where all 11 brands are priced
    g = g.filter(pl.all_horizontal(pl.col(f"price{j}").is_not_null() for j in range(1, 12)))
    own = np.log(g[f"price{brand}"].to_numpy())
    others = [np.log(g[f"price{j}"].to_numpy()) for j in range(1, 12) if j != brand]
    X = np.column_stack(
        [
            np.ones(g.height),
            own,
            *others,
            g["deal"],
            g["feat"],
            _dummies(g["store"].to_numpy()),
            _dummies(g["week"].to_numpy()),
        ]
    )
    fit = sm.OLS(g["logmove"].to_numpy(), X).fit(
        cov_type="cluster", cov_kwds={"groups": g["store"].to_numpy()}
    )
    got = res.cross.filter(pl.col("item_id") == f"B{brand:02d}")
    e = dict(zip(got["other_item_id"], got["elasticity"], strict=True))
    s = dict(zip(got["other_item_id"], got["std_error"], strict=True))
    names = [f"B{brand:02d}"] + [f"B{j:02d}" for j in range(1, 12) if j != brand]
    # units = round(exp(logmove)): the log of the rounded count differs by < 5e-5
    for k, name in enumerate(names, start=1):
        assert e[name] == pytest.approx(fit.params[k], abs=2e-4), name
        assert s[name] == pytest.approx(fit.bse[k], rel=2e-3), name
    assert int(got["n_obs"][0]) == g.height
    # own prices elastic; significant cross terms are mostly substitutes (29 vs 6)
    assert e[names[0]] < -1.5
    off = res.cross.filter(pl.col("item_id") != pl.col("other_item_id"))
    assert (off["ci_low"] > 0).sum() > 3 * (off["ci_high"] < 0).sum()


def test_oj_store_brand_matrix_matches_statsmodels(oj):
    raw, sales, items = oj
    one = sales.filter(pl.col("market").is_in(["2", "5"]))
    res = estimate_cross(one, items=items, controls=["deal", "feat"])
    assert res.cross.filter(pl.col("market") == "2").height == 11 * 11
    g = raw.filter((pl.col("brand") == 5) & (pl.col("store") == 5)).sort("week")
    g = g.filter(pl.all_horizontal(pl.col(f"price{j}").is_not_null() for j in range(1, 12)))
    cols = [np.log(g["price5"].to_numpy())] + [
        np.log(g[f"price{j}"].to_numpy()) for j in range(1, 12) if j != 5
    ]
    X = np.column_stack([np.ones(g.height), *cols, g["deal"], g["feat"]])
    y = np.log(g["units"].to_numpy().astype(float))
    fit = sm.OLS(y, X).fit(cov_type="HC1")
    got = res.cross.filter((pl.col("item_id") == "B05") & (pl.col("market") == "5"))
    e = dict(zip(got["other_item_id"], got["elasticity"], strict=True))
    s = dict(zip(got["other_item_id"], got["std_error"], strict=True))
    names = ["B05"] + [f"B{j:02d}" for j in range(1, 12) if j != 5]
    for k, name in enumerate(names, start=1):
        assert e[name] == pytest.approx(fit.params[k], abs=1e-8), name
        assert s[name] == pytest.approx(fit.bse[k], rel=1e-6), name
