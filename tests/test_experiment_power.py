"""Analytic power against simulated power, MDE, weeks needed and variance components."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.experiment import analyze_experiment, design_experiment
from pricelab.experiment import power as pw
from pricelab.experiment.effects import ratio_effect
from pricelab.experiment.poisson import poisson_fe
from pricelab.experiment.synthetic import synthetic_sales, synthetic_units, week_starts


def _draw(rng, rate, mult, weeks, disp):
    lam = (rate * mult)[:, None] * np.exp(rng.normal(0, 0.1, weeks))[None, :]
    if disp:
        lam = lam * rng.gamma(1 / disp, disp, lam.shape)
    return rng.poisson(lam).astype(float)


def _simulate(rate, n_t, effect, pre, weeks, disp, reps, seed, elasticity_of=None):
    """Rejection rate of the CUPED ratio test (and elasticity estimates) over re-randomisations."""
    rng = np.random.default_rng(seed)
    n = len(rate)
    rejected, slopes, ses = 0, [], []
    for _ in range(reps):
        tr = rng.permutation(np.arange(n) < n_t)
        x_pre = _draw(rng, rate, np.ones(n), pre, disp)
        y = _draw(rng, rate, np.where(tr, 1 + effect, 1.0), weeks, disp)
        lo, hi = ratio_effect(y.mean(axis=1), tr, x_pre.mean(axis=1)).interval()
        rejected += lo > 0 or hi < 0
        if elasticity_of is not None:
            lr = np.where(tr, np.log1p(elasticity_of / 100), 0.0)
            fit = poisson_fe(
                np.hstack([x_pre, y]),
                np.hstack([np.zeros_like(x_pre), np.repeat(lr[:, None], weeks, 1)]),
            )
            slopes.append(fit.coef[0])
            ses.append(fit.std_error[0])
    return rejected / reps, np.array(slopes), np.array(ses)


def _units(n, seed, sd=0.8):
    rng = np.random.default_rng(seed)
    return 3.0 * np.exp(rng.normal(0, sd, n) - sd**2 / 2)


def _components(rate, pre, disp, seed):
    return pw.variance_components(
        _draw(np.random.default_rng(seed), rate, np.ones(len(rate)), pre, disp)
    )


SCENARIOS = [  # n per arm, pre weeks, test weeks, true units effect, dispersion
    (150, 12, 4, -0.12, 0.1),
    (100, 8, 2, 0.15, None),
]


@pytest.mark.parametrize(("n_arm", "pre", "weeks", "effect", "disp"), SCENARIOS)
def test_analytic_power_matches_simulation(n_arm, pre, weeks, effect, disp):
    rate = _units(2 * n_arm, seed=1)
    comp = _components(rate, pre, disp, seed=2)
    analytic = float(pw.power_at(comp, effect, weeks, n_arm, n_arm))
    simulated, _, _ = _simulate(rate, n_arm, effect, pre, weeks, disp, reps=600, seed=3)
    assert 0.3 < analytic < 0.95
    assert abs(analytic - simulated) < 0.05, (analytic, simulated)


def test_power_at_the_mde_is_the_target():
    n_arm, pre, weeks = 150, 12, 4
    rate = _units(2 * n_arm, seed=4)
    comp = _components(rate, pre, None, seed=5)
    dec, inc = pw.mde_pair(comp, weeks, n_arm, n_arm)
    assert 0 < dec < inc
    for effect in (-dec, inc):
        assert float(pw.power_at(comp, effect, weeks, n_arm, n_arm)) == pytest.approx(0.8, abs=1e-6)
        simulated, _, _ = _simulate(rate, n_arm, effect, pre, weeks, None, reps=600, seed=6)
        assert abs(simulated - 0.8) < 0.05, (effect, simulated)


def test_null_rejection_rate_is_alpha():
    rate = _units(240, seed=7)
    simulated, _, _ = _simulate(rate, 120, 0.0, 10, 3, 0.2, reps=800, seed=8)
    assert abs(simulated - 0.05) < 0.025


def test_elasticity_standard_error_matches_simulation():
    n_arm, pre, weeks, pct, eps = 120, 10, 4, 10.0, -1.5
    rate = _units(2 * n_arm, seed=9)
    comp = _components(rate, pre, None, seed=10)
    x = np.r_[np.zeros(n_arm), np.full(n_arm, np.log1p(pct / 100))]
    analytic = float(pw.elasticity_se(comp, weeks, x))
    _, slopes, ses = _simulate(
        rate,
        n_arm,
        (1 + pct / 100) ** eps - 1,
        pre,
        weeks,
        None,
        reps=300,
        seed=11,
        elasticity_of=pct,
    )
    assert slopes.mean() == pytest.approx(eps, abs=3 * slopes.std() / np.sqrt(len(slopes)) + 0.02)
    assert analytic == pytest.approx(slopes.std(), rel=0.12)
    assert ses.mean() == pytest.approx(slopes.std(), rel=0.12)


def test_variance_components_recover_known_values():
    rng = np.random.default_rng(12)
    a = 10 + rng.normal(0, 2.0, 3000)
    week = np.exp(rng.normal(0, 0.1, 10))
    y = (a[:, None] + rng.normal(0, 1.5, (3000, 10))) * week[None, :]
    comp = pw.variance_components(y)
    assert comp.mu == pytest.approx(y.mean())
    # components are on the scale of the overall mean (week shocks divided out)
    scale = (comp.mu / a.mean()) ** 2
    assert comp.s2_within == pytest.approx(1.5**2 * scale, rel=0.05)
    assert comp.s2_between == pytest.approx(a.var(ddof=1) * scale, rel=0.05)
    # closed form of the CUPED residual: var_y - cov^2 / var_x
    v = comp.residual_variance(4)
    var_y = comp.s2_between + comp.s2_within / 4
    var_x = comp.s2_between + comp.s2_within / 10
    assert float(v) == pytest.approx(var_y - comp.s2_between**2 / var_x, rel=1e-12)
    se = pw.effect_se(comp, 4, 50, 70)
    assert float(se) == pytest.approx(np.sqrt(v / comp.mu**2 * (1 / 50 + 1 / 70)), rel=1e-12)


def test_weeks_needed_is_the_first_week_reaching_power():
    comp = pw.VarianceComponents(mu=2.0, s2_between=4.0, s2_within=2.5, n_units=400, n_weeks=12)
    w = pw.weeks_needed(comp, 200, 200, 0.08)
    assert w is not None and w > 1
    for week, ok in ((w, True), (w - 1, False)):
        power = min(
            pw.power_at(comp, -0.08, week, 200, 200), pw.power_at(comp, 0.08, week, 200, 200)
        )
        assert bool(power >= 0.8) == ok
    # with a fixed pre-period CUPED has a variance floor: a tiny effect is unreachable
    assert pw.weeks_needed(comp, 200, 200, 0.001) is None
    # more weeks, smaller MDE; CUPED never hurts the MDE
    m = [pw.mde_pair(comp, k, 200, 200)[1] for k in (1, 2, 4, 8)]
    assert all(b < a for a, b in zip(m, m[1:], strict=False))
    assert pw.mde_pair(comp, 4, 200, 200)[1] < pw.mde_pair(comp, 4, 200, 200, cuped=False)[1]


def test_design_power_table_consistent_with_mde_and_weeks():
    units = synthetic_units(150, ("US", "GB"), seed=13)
    history = synthetic_sales(
        units, week_starts(__import__("datetime").date(2024, 1, 1), 12), seed=14
    )
    d = design_experiment(
        units.drop("base_rate"), history, name="p", cells=[0, 10], weeks=4, seed=1, mde=10
    )
    row = d.power.row(0, named=True)
    comp = pw.VarianceComponents(
        **{
            k if k != "pre_weeks" else "n_weeks": v
            for k, v in d.power_details["components"].items()
        }
    )
    assert row["n_treated"] == row["n_control"] == 150
    assert row["mde_increase_pct"] == pytest.approx(100 * pw.mde_pair(comp, 4, 150, 150)[1])
    assert row["mde_pct"] == max(row["mde_increase_pct"], row["mde_decrease_pct"])
    assert row["se_pct"] < row["se_pct_no_cuped"]
    assert row["weeks_needed"] == pw.weeks_needed(comp, 150, 150, 0.10)
    assert d.power_details["weeks_needed"] == row["weeks_needed"]
    x = np.r_[np.zeros(150), np.full(150, np.log1p(0.1))]
    assert row["mde_elasticity"] == pytest.approx(
        2.8015852 * float(pw.elasticity_se(comp, 4, x)), rel=1e-6
    )


@pytest.mark.slow
def test_design_power_matches_simulated_pipeline():
    """End to end: design power of the +10% cell vs rejections of analyze_experiment."""
    import datetime as dt

    units = synthetic_units(120, ("US", "GB"), seed=21, level_sd=0.6)
    eps = -1.2
    truth = 1.1**eps - 1
    analytic, rejected, reps = [], 0, 300
    for r in range(reps):
        hist = synthetic_sales(units, week_starts(dt.date(2024, 1, 1), 10), seed=1000 + r)
        d = design_experiment(
            units.drop("base_rate"),
            hist,
            name="p",
            cells=[0, 10],
            stratify=["category"],
            weeks=3,
            seed=r,
        )
        c = d.power_details["components"]
        comp = pw.VarianceComponents(
            c["mu"], c["s2_between"], c["s2_within"], c["n_units"], c["pre_weeks"]
        )
        analytic.append(float(pw.power_at(comp, truth, 3, 120, 120)))
        pct = units.join(d.assignment, on=["item_id", "market"], maintain_order="left")
        test = synthetic_sales(
            units,
            week_starts(d.start, 3),
            seed=5000 + r,
            elasticity=eps,
            price_change_pct=pct["price_change_pct"].to_numpy(),
        )
        row = analyze_experiment(d, test, hist).table.filter(pl.col("cell") == "+10%")
        rejected += row["effect_high"].item() < 0 or row["effect_low"].item() > 0
    assert abs(rejected / reps - np.mean(analytic)) < 0.05, (rejected / reps, np.mean(analytic))
