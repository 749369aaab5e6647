"""Experiment analysis: statsmodels references, CUPED, SRM, observational check, bad inputs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from pricelab.errors import CheckFailed, DataError, UsageError
from pricelab.experiment import analyze_experiment
from pricelab.experiment.synthetic import synthetic_experiment

KEYS = ["item_id", "market"]


@pytest.fixture(scope="module")
def sim():
    return synthetic_experiment(
        40,
        ("US", "GB"),
        cells=(-10.0, 0.0, 10.0),
        pre_weeks=6,
        test_weeks=3,
        elasticity=-1.5,
        seed=5,
        dispersion=0.2,
    )


def _unit_means(sales: pl.DataFrame, a: pl.DataFrame, key: str) -> pl.DataFrame:
    """Mean weekly units and revenue per randomisation unit (missing weeks are zeros)."""
    weeks = sales["date"].n_unique()
    return (
        sales.join(a.select(*KEYS, key), on=KEYS)
        .group_by(key)
        .agg(
            (pl.col("quantity").sum() / weeks).alias("q"),
            ((pl.col("price") * pl.col("quantity")).sum() / weeks).alias("r"),
        )
    )


def _sm_ratio(y, d, x, groups):
    """b1 / b0 and its delta-method SE from a statsmodels cluster-robust OLS."""
    X = np.column_stack([np.ones_like(y), d, x - x.mean()])
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
    b0, b1 = fit.params[:2]
    g = np.array([-b1 / b0**2, 1 / b0, 0.0])
    return b1 / b0, float(np.sqrt(g @ fit.cov_params() @ g))


@pytest.mark.parametrize("unit", ["item-market", "item"])
def test_effects_equal_statsmodels_cluster_ols(unit):
    design, hist, test, _ = synthetic_experiment(
        40, ("US", "GB"), pre_weeks=6, test_weeks=3, seed=6, unit=unit, dispersion=0.2
    )
    res = analyze_experiment(design, test, hist)
    a = design.assignment.with_columns(
        (pl.col("item_id") if unit == "item" else pl.concat_str(KEYS, separator="|")).alias("k")
    )
    cells = a.group_by("k").agg(pl.col("price_change_pct").first())
    df = (
        cells.join(_unit_means(test, a, "k"), on="k")
        .join(_unit_means(hist, a, "k").rename({"q": "xq", "r": "xr"}), on="k")
        .sort("k")
    )
    for pct in (-10.0, 10.0):
        sub = df.filter(pl.col("price_change_pct").is_in([0.0, pct]))
        d = (sub["price_change_pct"] == pct).to_numpy().astype(float)
        groups = np.arange(sub.height)
        row = res.table.filter(pl.col("price_change_pct") == pct)
        assert row["n_units"].item() == int(d.sum())
        for y, x, name in (("q", "xq", "effect"), ("r", "xr", "revenue_effect")):
            est, se = _sm_ratio(sub[y].to_numpy(), d, sub[x].to_numpy(), groups)
            assert row[f"{name}_pct"].item() == pytest.approx(100 * est, abs=1e-6)
            assert row[f"{name}_se"].item() == pytest.approx(100 * se, rel=1e-6)
            z = stats.norm.ppf(0.975)
            assert row[f"{name}_low"].item() == pytest.approx(100 * (est - z * se), abs=1e-6)


def _sm_poisson(panel: pl.DataFrame):
    """Poisson GLM with unit and week dummies, cluster-robust by unit (G/(G-1) factor)."""
    panel = panel.filter(pl.col("quantity").sum().over("u") > 0).sort("u", "date")
    u = panel["u"].to_physical().to_numpy()
    _, u = np.unique(u, return_inverse=True)
    _, w = np.unique(panel["date"].to_numpy(), return_inverse=True)
    X = np.column_stack(
        [panel["x"].to_numpy(), np.eye(u.max() + 1)[u], np.eye(w.max() + 1)[w][:, 1:]]
    )
    fit = sm.GLM(panel["quantity"].to_numpy().astype(float), X, family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": u, "use_correction": False}, tol=1e-13
    )
    g = u.max() + 1
    return fit.params[0], fit.bse[0] * np.sqrt(g / (g - 1))


def test_elasticity_equals_statsmodels_poisson_glm(sim):
    design, hist, test, _ = sim
    res = analyze_experiment(design, test, hist)
    a = design.assignment.select(
        *KEYS,
        "price_change_pct",
        pl.concat_str(KEYS, separator="|").cast(pl.Categorical).alias("u"),
    )
    both = pl.concat(
        [hist.with_columns(pl.lit(False).alias("t")), test.with_columns(pl.lit(True).alias("t"))]
    ).join(a, on=KEYS)
    both = both.with_columns(
        pl.when(pl.col("t"))
        .then((1 + pl.col("price_change_pct") / 100).log())
        .otherwise(0.0)
        .alias("x")
    )
    for pct in (-10.0, 10.0):
        b, se = _sm_poisson(both.filter(pl.col("price_change_pct").is_in([0.0, pct])))
        row = res.table.filter(pl.col("price_change_pct") == pct)
        assert row["elasticity"].item() == pytest.approx(b, abs=1e-6)
        assert row["elasticity_se"].item() == pytest.approx(se, rel=1e-6)
    b, se = _sm_poisson(both)
    assert res.pooled["elasticity"] == pytest.approx(b, abs=1e-6)
    assert res.pooled["elasticity_se"] == pytest.approx(se, rel=1e-6)


def _draw(rng, rate, mult, weeks, disp):
    lam = (rate * mult)[:, None] * np.exp(rng.normal(0, 0.1, weeks))[None, :]
    if disp:
        lam = lam * rng.gamma(1 / disp, disp, lam.shape)
    return rng.poisson(lam).astype(float)


def _coverage(reps, seed, n_arm=120, pre=8, weeks=3, pct=10.0, eps=-1.5, disp=0.3):
    """Coverage of the units-effect and elasticity intervals (the code analyze_experiment runs)."""
    from pricelab.experiment.effects import ratio_effect
    from pricelab.experiment.poisson import poisson_fe

    rng = np.random.default_rng(seed)
    z = stats.norm.ppf(0.975)
    truth = (1 + pct / 100) ** eps - 1
    hit_e = hit_b = 0
    for _ in range(reps):
        rate = 3.0 * np.exp(rng.normal(0, 0.8, 2 * n_arm) - 0.32)
        tr = rng.permutation(np.arange(2 * n_arm) < n_arm)
        x = _draw(rng, rate, np.ones(2 * n_arm), pre, disp)
        y = _draw(rng, rate, np.where(tr, (1 + pct / 100) ** eps, 1.0), weeks, disp)
        lo, hi = ratio_effect(y.mean(axis=1), tr, x.mean(axis=1)).interval()
        hit_e += lo <= truth <= hi
        lr = np.repeat(np.where(tr, np.log1p(pct / 100), 0.0)[:, None], weeks, axis=1)
        fit = poisson_fe(np.hstack([x, y]), np.hstack([np.zeros_like(x), lr]))
        b, s = fit.coef[0], fit.std_error[0]
        hit_b += b - z * s <= eps <= b + z * s
    return hit_e / reps, hit_b / reps


@pytest.mark.parametrize(("pct", "eps", "disp"), [(10.0, -1.5, 0.3), (-15.0, -2.5, None)])
def test_intervals_cover_truth_at_nominal_rate(pct, eps, disp):
    cov_effect, cov_elasticity = _coverage(400, seed=int(pct) + 100, pct=pct, eps=eps, disp=disp)
    assert abs(cov_effect - 0.95) <= 0.05, cov_effect
    assert abs(cov_elasticity - 0.95) <= 0.05, cov_elasticity


@pytest.mark.slow
def test_pipeline_intervals_cover_truth():
    """analyze_experiment end to end: units, revenue, profit and elasticity intervals."""
    reps, eps, hits = 300, -1.5, {"effect": 0, "revenue_effect": 0, "profit_effect": 0, "el": 0}
    for r in range(reps):
        design, hist, test, _ = synthetic_experiment(
            60,
            ("US", "GB"),
            cells=(0.0, 10.0),
            pre_weeks=6,
            test_weeks=3,
            seed=10 * r,
            elasticity=eps,
            dispersion=0.2,
        )
        row = analyze_experiment(design, test, hist).table.row(0, named=True)
        truth = {
            "effect": 1.1**eps - 1,
            "revenue_effect": 1.1 ** (1 + eps) - 1,
            "profit_effect": 1.1**eps * (1.1 - 0.45) / 0.55 - 1,
        }
        for k, t in truth.items():
            hits[k] += row[f"{k}_low"] <= 100 * t <= row[f"{k}_high"]
        hits["el"] += row["elasticity_low"] <= eps <= row["elasticity_high"]
    for k, v in hits.items():
        assert abs(v / reps - 0.95) <= 0.05, (k, v / reps)


def test_cuped_narrows_intervals_when_pre_period_predicts():
    ratios, unrelated = [], []
    for seed in range(4):
        design, hist, test, units = synthetic_experiment(
            60, ("US", "GB"), pre_weeks=8, test_weeks=3, seed=seed
        )
        on = analyze_experiment(design, test, hist).table
        off = analyze_experiment(design, test, hist, cuped=False).table
        ratios.append(
            (
                (on["effect_high"] - on["effect_low"]) / (off["effect_high"] - off["effect_low"])
            ).mean()
        )
        # a pre-period from unrelated units does not predict: CUPED must not hurt much
        shuffled = hist.with_columns(pl.col("quantity").shuffle(seed=seed).over("date"))
        on2 = analyze_experiment(design, test, shuffled).table
        unrelated.append(
            (
                (on2["effect_high"] - on2["effect_low"]) / (off["effect_high"] - off["effect_low"])
            ).mean()
        )
    assert max(ratios) < 0.7, ratios
    assert max(unrelated) < 1.05 and min(unrelated) > 0.9, unrelated


def test_missing_rows_count_as_zero_sales(sim):
    design, hist, test, _ = sim
    full = analyze_experiment(design, test, hist)
    sparse = analyze_experiment(
        design, test.filter(pl.col("quantity") > 0), hist.filter(pl.col("quantity") > 0)
    )
    cols = ["effect_pct", "effect_se", "revenue_effect_pct", "elasticity", "elasticity_se"]
    assert np.allclose(
        full.table.select(cols).to_numpy(), sparse.table.select(cols).to_numpy(), rtol=1e-9
    )


def test_assignment_frame_gives_same_result_as_design(sim):
    design, hist, test, _ = sim
    a = design.assignment.select(*KEYS, "price_change_pct")
    r1 = analyze_experiment(design, test, hist)
    r2 = analyze_experiment(a, test, hist)
    assert r1.table.equals(r2.table)
    assert (r2.start, r2.end) == (design.start, design.end - dt.timedelta(days=6))


def test_pre_weeks_limits_the_pre_period(sim):
    design, hist, test, _ = sim
    cut = design.start - dt.timedelta(weeks=3)
    short = analyze_experiment(design, test, hist, pre_weeks=3)
    same = analyze_experiment(design, test, hist.filter(pl.col("date") >= cut))
    assert short.pre_weeks == 3
    assert short.table.equals(same.table)
    assert not short.table.equals(analyze_experiment(design, test, hist).table)


def test_srm_flags_lost_units(sim):
    design, hist, test, _ = sim
    ok = analyze_experiment(design, test, hist).srm
    assert not ok["mismatch"] and ok["p_value"] > 0.5
    design, hist, test, _ = synthetic_experiment(
        200, ("US", "GB"), pre_weeks=4, test_weeks=2, seed=9
    )
    lost = design.assignment.filter(pl.col("cell") == "+10%").head(60).select(KEYS)
    res = analyze_experiment(design, test.join(lost, on=KEYS, how="anti"), hist)
    srm = res.srm
    expect = stats.chisquare(
        srm["observed"], np.array(srm["assigned"]) / sum(srm["assigned"]) * sum(srm["observed"])
    )
    assert srm["p_value"] == pytest.approx(expect.pvalue, rel=1e-9)
    n_cell = design.assignment.filter(pl.col("cell") == "+10%").height
    assert srm["observed"][srm["cells"].index("+10%")] == n_cell - 60
    assert srm["mismatch"] and srm["p_value"] < 0.001
    assert "MISMATCH" in res.summary


def test_cell_without_test_sales_keeps_other_results(sim):
    design, hist, test, _ = sim
    gone = design.assignment.filter(pl.col("cell") == "+10%").select(KEYS)
    res = analyze_experiment(design, test.join(gone, on=KEYS, how="anti"), hist)
    row = res.table.filter(pl.col("cell") == "+10%").row(0, named=True)
    assert row["effect_pct"] < -95  # CUPED-adjusted: no sales at all in the cell
    assert row["elasticity"] is None and any("+10%" in n for n in res.notes)
    assert res.table.filter(pl.col("cell") == "-10%")["elasticity"].item() is not None
    assert res.srm["mismatch"]


def test_no_sales_in_window_is_check_failed_naming_dates(sim):
    design, hist, test, _ = sim
    with pytest.raises(
        CheckFailed, match=f"{design.start.isoformat()} to {design.end.isoformat()}"
    ) as err:
        analyze_experiment(design, test.filter(pl.col("date") > design.end), hist)
    assert err.value.exit_code == 1
    with pytest.raises(CheckFailed):
        analyze_experiment(design.assignment, test.head(0), hist)


def test_bad_inputs(sim):
    design, hist, test, _ = sim
    with pytest.raises(DataError, match="no pre-period sales"):
        analyze_experiment(design, test, hist.filter(pl.col("date") >= design.start))
    a = design.assignment
    with pytest.raises(UsageError, match="no control"):
        analyze_experiment(a.filter(pl.col("price_change_pct") != 0), test, hist)
    with pytest.raises(UsageError, match="no treated"):
        analyze_experiment(a.filter(pl.col("price_change_pct") == 0), test, hist)
    with pytest.raises(UsageError, match="missing column"):
        analyze_experiment(a.drop("price_change_pct"), test, hist)
    with pytest.raises(UsageError, match="missing column"):
        analyze_experiment(design, test.drop("quantity"), hist)
    with pytest.raises(DataError, match="more than once"):
        analyze_experiment(pl.concat([a, a.head(1)]), test, hist)
    with pytest.raises(UsageError, match="alpha"):
        analyze_experiment(design, test, hist, alpha=0)
    with pytest.raises(UsageError, match="ExperimentDesign"):
        analyze_experiment({"cells": [0, 10]}, test, hist)


def test_outputs_contract_json_and_profit_without_cost(sim):
    design, hist, test, _ = sim
    res = analyze_experiment(design, test, hist, alpha=0.1)
    assert res.table.columns[:9] == [
        "cell",
        "price_change_pct",
        "n_units",
        "effect_pct",
        "effect_low",
        "effect_high",
        "elasticity",
        "elasticity_low",
        "elasticity_high",
    ]
    row = res.table.row(0, named=True)
    z = stats.norm.ppf(0.95)
    assert row["effect_high"] - row["effect_pct"] == pytest.approx(z * row["effect_se"])
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["table"][0]["cell"] == "-10%" and doc["srm"]["mismatch"] is False
    no_cost = analyze_experiment(design, test.drop("unit_cost"), hist.drop("unit_cost"))
    assert no_cost.table["profit_effect_pct"].null_count() == 2
    assert any("unit_cost" in n for n in no_cost.notes)
    assert res.table["profit_effect_pct"].null_count() == 0
