"""IV: the heteroskedasticity-robust first-stage F beside the classical one; the weak flag."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate
from tests import _realdata_refs as R


def _robust_f(x: np.ndarray, Z: np.ndarray, excluded: list[int]) -> float:
    """statsmodels: Wald F of the excluded instruments in the first stage, HC1 covariance."""
    fit = sm.OLS(x, Z).fit(cov_type="HC1")
    R_ = np.zeros((len(excluded), Z.shape[1]))
    for i, j in enumerate(excluded):
        R_[i, j] = 1.0
    return float(np.squeeze(fit.wald_test(R_, use_f=True, scalar=True).statistic))


def test_heteroskedastic_first_stage_is_flagged_by_the_robust_f():
    # price noise grows with the instrument: the classical F says strong (214), the robust F
    # (the assumption behind the HC1 standard errors) says weak (6.4)
    rng = np.random.default_rng(2)
    n = 200
    z = rng.standard_t(3, size=n)  # heavy-tailed cost shifter
    lp = 0.1 * z + 0.1 * np.abs(z) ** 1.5 * rng.normal(size=n)  # noise grows with |z|
    lq = 3 - 2 * lp + rng.normal(0, 0.3, n)
    d0 = dt.date(2020, 1, 6)
    sales = pl.DataFrame(
        {
            "item_id": "A",
            "market": "US",
            "date": [d0 + dt.timedelta(weeks=i) for i in range(n)],
            "price": np.exp(lp) * 10,
            "quantity": np.round(np.exp(lq)).astype(np.int64) + 1,
            "cost_shifter": z,
        }
    )
    row = estimate(sales, model="iv", instrument="cost_shifter", controls=None).elasticities.row(
        0, named=True
    )
    g = sales.filter(pl.col("quantity") > 0)
    Z = sm.add_constant(g["cost_shifter"].to_numpy())
    x = np.log(g["price"].to_numpy())
    assert row["first_stage_f_robust"] == pytest.approx(_robust_f(x, Z, [1]), rel=1e-6)
    assert row["first_stage_f"] > 10 > row["first_stage_f_robust"]
    assert "weak_instrument" in row["flags"].split(",")


@pytest.mark.realdata
def test_tuna_robust_first_stage_f_is_statsmodels_hc1_wald():
    df = R.tuna()
    res = estimate(df, model="iv", instrument="unit_cost", controls=["nsale", "lcust"])
    got = {r["item_id"]: r for r in res.elasticities.iter_rows(named=True)}
    for b, g in R.groups(df, "item_id"):
        g = g.filter(pl.col("quantity") > 0)
        Z = np.column_stack(
            [np.ones(g.height), g["lwholesale"].to_numpy(), g.select("nsale", "lcust").to_numpy()]
        )
        ref = _robust_f(g["lprice"].to_numpy(), Z, [1])
        assert got[b]["first_stage_f_robust"] == pytest.approx(ref, rel=1e-6), b
        weak = "weak_instrument" in got[b]["flags"].split(",")
        assert weak == (ref < 10), b
