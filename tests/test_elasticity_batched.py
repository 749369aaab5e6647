"""The public partition API (:mod:`pricelab.elasticity.batched`) against ``estimate``.

``estimate`` on the whole frame is the reference (itself tested against statsmodels and
synthetic truth in ``test_elasticity_*``): fitting partitions of whole groups and
combining them must give the same numbers, without Spark.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pricelab.elasticity import (
    STAT_COLUMNS,
    GroupFits,
    estimate,
    fit_groups,
    fits_table,
    group_stats,
    normalize_by,
    refit_groups,
    resolve_controls,
    shrink_groups,
    with_params,
    wrap_results,
)
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.errors import UsageError

BY = ["item_id", "market"]


@pytest.fixture(scope="module")
def panel() -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Synthetic sales (item attributes joined), items starting up to 4 weeks late, cut
    into three partitions of whole items."""
    sales, items, _ = simulate_panel(n_items=45, weeks=52, base_units=5.0, seed=7)
    late = pl.col("item_id").str.slice(1).cast(pl.Int64) % 5
    sales = sales.filter(pl.col("date") >= pl.lit(dt.date(2022, 1, 3)) + pl.duration(weeks=late))
    sales = sales.join(items, on="item_id")
    part = pl.col("item_id").str.slice(1).cast(pl.Int64) % 3
    return sales, [sales.filter(part == k) for k in range(3)]


def assert_frames_close(ref: pl.DataFrame, got: pl.DataFrame, tol: float = 1e-8) -> None:
    assert ref.columns == got.columns and ref.height == got.height
    for c in ref.columns:
        if ref[c].dtype.is_numeric():
            np.testing.assert_allclose(
                got[c].cast(pl.Float64).to_numpy(),
                ref[c].cast(pl.Float64).to_numpy(),
                rtol=0,
                atol=tol,
                equal_nan=True,
                err_msg=c,
            )
        else:
            assert ref[c].to_list() == got[c].to_list(), c


@pytest.mark.parametrize("tau", ["level", "common"])
def test_hierarchical_in_two_stages_equals_estimate(panel, tau: str) -> None:
    sales, parts = panel
    spec = {"by": BY, "controls": "default", "se": "cluster", "min_obs": 8, "tau": tau}
    ref = estimate(sales, model="hierarchical", by=BY, tau=tau)
    origin = sales["date"].min()
    stats = pl.concat([group_stats(p, spec, origin=origin) for p in parts])
    assert stats.height == ref.elasticities.height == 90
    assert set(STAT_COLUMNS) <= set(stats.columns)
    # mean_q is the mean weekly quantity of each group
    mean_q = sales.group_by(BY).agg(pl.col("quantity").mean().alias("m")).sort(BY)
    np.testing.assert_allclose(
        stats.sort(BY)["mean_q"].to_numpy(), mean_q["m"].to_numpy(), rtol=1e-12
    )
    fits, used = shrink_groups(stats, by=BY, tau=tau)
    assert used == ref.parameters["pool_by"]
    # stage 3: intercepts and controls refitted on the partitions given the shrunk slopes
    table = fits_table(fits)
    refitted = pl.concat([refit_groups(p, table, spec, origin=origin) for p in parts])
    res = wrap_results(
        with_params(fits, refitted), model="hierarchical", params={"pool_by": used}, alpha=0.05
    )
    assert res.model == "hierarchical"
    assert_frames_close(ref.elasticities, res.elasticities)
    assert_frames_close(ref.params, res.params)


def test_fit_groups_partitions_equal_the_whole_fit(panel) -> None:
    sales, parts = panel
    spec = {"model": "poisson", "by": BY, "controls": "default"}
    ref = estimate(sales, **spec)
    origin = sales["date"].min()
    got = pl.concat([fit_groups(p, spec, origin=origin) for p in parts]).sort(BY)
    assert_frames_close(ref.elasticities, got.select(ref.elasticities.columns))
    b = got.select([*BY, *(c for c in got.columns if c.startswith("b_"))])
    assert_frames_close(ref.params, b.rename({c: c[2:] for c in b.columns if c not in BY}))


def test_wrap_results_intervals_and_flags() -> None:
    # two groups with known estimates: the interval is e +- z(0.95) s, flags from the sign
    keys = pl.DataFrame({"item_id": ["A", "B"], "market": ["US", "US"]})
    arrays = {
        "elasticity": np.array([-2.0, 0.5]),
        "std_error": np.array([0.5, 0.25]),
        "n_obs": np.array([30, 40]),
        "n_zero": np.array([0, 1]),
        "price_variation": np.array([0.1, 0.2]),
        "fit_stat": np.array([0.5, 0.6]),
        "first_stage_f": np.full(2, np.nan),
        "flags": np.zeros(2, np.int64),
        "smearing": np.ones(2),
        "params": np.array([[3.0, -2.0], [1.0, 0.5]]),
    }
    res = wrap_results(
        GroupFits(arrays, keys, ["intercept", "log_price"]), model="poisson", params={}, alpha=0.1
    )
    e = res.elasticities
    np.testing.assert_allclose(
        e["ci_low"].to_numpy(), [-2 - 1.6448536269514722 * 0.5, 0.5 - 1.6448536269514722 * 0.25]
    )
    assert e["flags"].to_list() == ["", "positive"]
    assert e["method"].to_list() == ["poisson", "poisson"]
    assert res.params["log_price"].to_list() == [-2.0, 0.5]


def test_normalize_by_and_controls() -> None:
    assert normalize_by(None) == []
    assert normalize_by(" item_id , market,") == ["item_id", "market"]
    assert normalize_by(("market",)) == ["market"]
    assert resolve_controls("default") == ["promo", "fourier", "trend"]
    assert resolve_controls("none") == [] and resolve_controls(None) == []
    with pytest.raises(UsageError, match="unknown --by column 'brand'"):
        group_stats(
            pl.DataFrame({"item_id": ["A"], "market": ["US"], "price": [1.0], "quantity": [1.0]}),
            {"by": ["brand"], "controls": None, "se": "HC1", "min_obs": 1},
        )
