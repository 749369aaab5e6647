"""Average-change budgets priced out with multipliers (pricelab/optimize/avg_change.py),
against a cvxpy conic solve of the same problem, brute force along the budget, the
candidate MILP, and every-constraint checks on hypothesis-generated problems."""

import cvxpy as cp
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pricelab.errors import InfeasibleError
from pricelab.optimize import load_constraints, optimize
from pricelab.optimize.avg_change import implied_caps
from pricelab.optimize.budget_penalty import argmax_penalised, penalised_term
from pricelab.optimize.decompose import Responder
from pricelab.optimize.links import AverageChangeBudget, VolumeFloor
from pricelab.optimize.problem import build_problem
from pricelab.optimize.routes import candidate_milp
from tests._optimize_data import demand
from tests.test_optimize_properties import _really_infeasible, _violations

B = {"bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}, "horizon_weeks": 2}


def _avg_change(plan) -> float:
    t = plan.table
    w = (t["baseline_revenue"] / t["fx_rate"]).to_numpy()
    return float(100 * (w @ (t["recommended_price"] / t["current_price"]).to_numpy() / w.sum() - 1))


def _conic(prob):
    """The same problem in cvxpy: elastic rows in quantity space (z = q / q0), inelastic rows
    in price space (x = p / p0), one PowCone3D per block of rows; upper sides of budgets
    (sum a p0 u <= (1 + B) R with u >= z^(1/e) convex) and volume floors on elastic rows."""
    n, h = prob.n, prob.horizon
    el = np.flatnonzero(prob.e < -1)
    ie = np.flatnonzero(prob.e >= -1)
    scale = float((prob.p0 * prob.q0 / prob.fx).mean())
    k, fx, p0, q0, e = prob.cost, prob.fx, prob.p0, prob.q0, prob.e
    cons, obj = [], 0
    z, t, u = cp.Variable(el.size), cp.Variable(el.size), cp.Variable(el.size)
    if el.size:
        ee = e[el]
        s = -1.0 / ee
        cons += [
            cp.PowCone3D(z, np.ones(el.size), t, 1 + 1 / ee),
            cp.PowCone3D(u, z, np.ones(el.size), 1 / (1 + s)),
            z >= (np.minimum(prob.hi[el], 1e300) / p0[el]) ** ee,
            z <= (prob.lo[el] / p0[el]) ** ee,
        ]
        obj = (
            obj
            + h * (p0[el] * q0[el] / fx[el] / scale) @ t
            - h * (k[el] * q0[el] / fx[el] / scale) @ z
        )
    x, v, w = cp.Variable(ie.size), cp.Variable(ie.size), cp.Variable(ie.size)
    if ie.size:
        ei = e[ie]
        cons += [
            cp.PowCone3D(x, np.ones(ie.size), v, 1 + ei),
            cp.PowCone3D(w, x, np.ones(ie.size), 1 / (1 - ei)),
            x >= prob.lo[ie] / p0[ie],
            x <= prob.hi[ie] / p0[ie],
        ]
        obj = (
            obj
            + h * (q0[ie] * p0[ie] / fx[ie] / scale) @ v
            - h * (q0[ie] * k[ie] / fx[ie] / scale) @ w
        )
    pos_el = {r: j for j, r in enumerate(el)}
    pos_ie = {r: j for j, r in enumerate(ie)}
    for lk in prob.links:
        r_el = np.array([pos_el[i] for i in lk.rows if i in pos_el], dtype=int)
        r_ie = np.array([pos_ie[i] for i in lk.rows if i in pos_ie], dtype=int)
        if isinstance(lk, AverageChangeBudget):
            a = q0 / fx
            R = float((a * p0)[lk.rows].sum())
            terms = []
            if r_el.size:
                terms.append((a * p0)[el[r_el]] @ u[r_el])
            if r_ie.size:
                terms.append((a * p0)[ie[r_ie]] @ x[r_ie])
            cons.append(sum(terms) / R <= 1 + lk.value / 100)
        elif isinstance(lk, VolumeFloor):
            assert r_ie.size == 0
            cons.append((q0[el[r_el]] / q0[lk.rows].sum()) @ z[r_el] >= lk.value / 100)
        else:
            raise AssertionError(lk.name)
    problem = cp.Problem(cp.Maximize(obj), cons)
    assert problem.is_dcp()
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    p = np.empty(n)
    if el.size:
        p[el] = p0[el] * np.asarray(z.value) ** (1 / e[el])
    if ie.size:
        p[ie] = p0[ie] * np.asarray(x.value)
    return p


def _raise_costs(df: pl.DataFrame, factor: float) -> pl.DataFrame:
    return df.with_columns((pl.col("unit_cost") * factor).alias("unit_cost"))


@pytest.mark.parametrize("seed", range(6))
def test_penalised_row_maximiser_against_a_grid(seed):
    rng = np.random.default_rng(seed)
    n = 400
    e = np.concatenate([rng.uniform(-5, -1.01, n // 2), rng.uniform(-1, -0.05, n // 2)])
    e[:5] = -1.0
    k = rng.uniform(-60, 150, n)
    k[rng.random(n) < 0.2] = 0.0
    theta = rng.uniform(-1.5, 1.5, n)
    theta[rng.random(n) < 0.1] = 0.0
    p0, q0 = rng.uniform(50, 150, n), rng.uniform(1, 10, n)
    lo, hi = p0 * rng.uniform(0.3, 0.95, n), p0 * rng.uniform(1.05, 3, n)
    p = argmax_penalised(lo, hi, k, theta, p0, q0, e)
    assert ((p >= lo) & (p <= hi)).all()
    grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 20001)[None]
    vals = penalised_term(grid, k[:, None], theta[:, None], p0[:, None], q0[:, None], e[:, None])
    best = vals.max(axis=1)
    mine = penalised_term(p, k, theta, p0, q0, e)
    scale = np.abs(best) + q0 * p0
    assert (mine >= best - 1e-12 * scale).all()
    assert (mine <= best + 1e-6 * scale).all()  # a grid step away from the true maximum


@pytest.mark.parametrize("n_items,seed", [(5, 0), (5, 1), (100, 2)])
@pytest.mark.parametrize("volume", [False, True])
def test_upper_side_matches_conic(n_items, seed, volume):
    df = _raise_costs(demand(n_items, seed=seed, e_range=(-3.5, -1.3)), 2.0)
    cons = {**B, "min_margin_pct": 10, "max_avg_change_pct": 4}
    free = optimize(df, {k: v for k, v in cons.items() if k != "max_avg_change_pct"})
    assert _avg_change(free) > 4.5  # the budget binds on its upper side
    if volume:
        t = optimize(df, cons).table
        q = t["expected_quantity"].sum() / t["baseline_quantity"].sum()
        cons["min_volume_pct"] = float(100 * q + 2.0)  # binds together with the budget
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    ref = _conic(prob)
    ref_obj = float(prob.objective_value(ref).sum())
    assert plan.extra["path"] == "decomposition" and "max_avg_change_pct" in plan.formulation
    assert plan.objective == pytest.approx(ref_obj, rel=1e-6)
    assert plan.objective >= ref_obj * (1 - 1e-7)  # the conic solve is only as good as 1e-8
    assert plan.gap <= 1e-8
    assert np.allclose(plan.table["recommended_price"].to_numpy(), ref, rtol=2e-4)
    assert _avg_change(plan) == pytest.approx(4.0, abs=1e-7)
    assert _avg_change(plan) <= 4.0 + 1e-9
    assert plan.multipliers["max_avg_change_pct 4 (all rows)"] > 0
    if volume:
        assert plan.multipliers[f"min_volume_pct {cons['min_volume_pct']:g} (all rows)"] > 0


def test_inelastic_rows_without_cap_are_bounded_by_the_budget():
    """-1 <= e < 0 and no max_increase_pct: the budget's implied cap keeps the problem
    bounded; the plan equals the price-space conic solve."""
    df = demand(6, seed=4, e_range=(-2.5, -0.4))
    cons = {"bounds": {"max_decrease_pct": 30}, "max_avg_change_pct": 6, "horizon_weeks": 3}
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    implied_caps(prob)
    assert (prob.e >= -1).any() and np.isfinite(prob.hi[prob.e >= -1]).all()
    ref = _conic(prob)
    ref_obj = float(prob.objective_value(ref).sum())
    assert plan.objective == pytest.approx(ref_obj, rel=1e-6)
    assert plan.gap <= 1e-8
    assert _avg_change(plan) == pytest.approx(6.0, abs=1e-7)


def _brute(prob, n_grid):
    """Best objective on the budget's binding plane (one linear equation) over a grid of the
    other rows' prices, plus the unconstrained optimum when it is feasible."""
    a = prob.q0 / prob.fx
    R = float((a * prob.p0).sum())
    B_ = prob.links[0].value / 100
    best = -np.inf
    for target in ((1 + B_) * R, (1 - B_) * R):
        axes = [np.linspace(prob.lo[i], prob.hi[i], n_grid) for i in range(prob.n - 1)]
        P = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, prob.n - 1)
        last = (target - P @ a[:-1]) / a[-1]
        ok = (last >= prob.lo[-1]) & (last <= prob.hi[-1])
        full = np.column_stack([P[ok], last[ok]])
        if full.size:
            best = max(best, float(prob.objective_value(full.T).sum(axis=0).max()))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("side", ["up", "down"])
def test_small_cases_match_brute_force(seed, side):
    df = demand(
        1,
        markets=("US", "GB") if seed % 2 else ("US", "GB", "CH"),
        seed=40 + seed,
        e_range=(-3.5, -1.3),
    )
    df = _raise_costs(df, 2.0 if side == "up" else 0.6)
    cons = {**B, "max_avg_change_pct": 3}
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    best = _brute(prob, 200_001 if prob.n == 2 else 1_501)
    assert abs(_avg_change(plan)) <= 3 + 1e-9
    assert plan.objective <= best * (1 + 1e-4)  # the grid is that fine
    gap = max(plan.gap, plan.extra.get("lagrangian_gap", 0.0))
    assert plan.objective * (1 + gap) >= best * (1 - 1e-12)  # the bound is an upper bound
    if side == "up":  # concave: exact
        assert plan.objective >= best - 1e-9 * abs(best)
        assert plan.gap <= 1e-8 and plan.extra["path"] == "decomposition"
    else:  # not concave: the better of the Lagrangian plan and the MILP, within its gap
        res, _ = candidate_milp(
            prob, Responder(prob), risk=None, draws=None, seed=0, n_grid=25, time_limit=60
        )
        assert plan.objective >= float(prob.objective_value(res.prices).sum()) * (1 - 1e-12)


@pytest.mark.parametrize("direction", [1.2, 0.8])
def test_budget_binds_when_the_optimum_moves_prices_20pct(direction):
    """Costs set so that the unconstrained optimum c e / (1 + e) is 1.2 (0.8) x the current
    price for every row; a 5% budget holds the average at +5% (-5%)."""
    df = demand(20, seed=7, e_range=(-3.5, -1.5))
    e, p0 = df["elasticity"].to_numpy(), df["base_price"].to_numpy()
    df = df.with_columns(pl.Series("unit_cost", direction * p0 * (1 + e) / e))
    wide = {"bounds": {"max_increase_pct": 50, "max_decrease_pct": 50}}
    free = optimize(df, wide)
    assert np.allclose(free.table["price_change_pct"].to_numpy(), 100 * (direction - 1))
    plan = optimize(df, {**wide, "max_avg_change_pct": 5})
    assert _avg_change(plan) == pytest.approx(5.0 if direction > 1 else -5.0, abs=1e-7)
    assert plan.extra["path"] == "decomposition" and plan.gap <= 1e-6
    s = plan.multipliers["max_avg_change_pct 5 (all rows)"]
    assert (s > 0) if direction > 1 else (s < 0)
    # every row is held by the budget (on the lower side the least elastic rows go up to
    # their cap: the cheapest way to lift the average)
    assert plan.table["binding"].str.contains("max_avg_change_pct").all()
    assert plan.objective < free.objective
    assert plan.objective >= plan.baseline_objective


def test_beats_or_matches_the_milp_grid():
    df = _raise_costs(demand(8, seed=9), 2.2)
    cons = {**B, "min_margin_pct": 20, "max_avg_change_pct": 3, "parity": {"max_gap_pct": 8}}
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    res, _ = candidate_milp(
        prob, Responder(prob), risk=None, draws=None, seed=0, n_grid=25, time_limit=60
    )
    milp_obj = float(prob.objective_value(res.prices).sum())
    assert plan.extra["path"] == "decomposition"
    assert "parity band search" in plan.formulation
    assert plan.objective >= milp_obj
    assert _violations(df, plan.table["recommended_price"].to_numpy(), cons) == []


def test_linked_budgets_and_ladders_stay_on_the_milp():
    df = _raise_costs(demand(3, seed=2), 1.8)
    over = {
        **B,
        "max_avg_change_pct": 4,
        "overrides": [{"where": {"category": ["bags"]}, "max_avg_change_pct": 2}],
    }
    plan = optimize(df, over)
    assert plan.extra["path"] == "milp" and "share rows" in plan.formulation
    lad = optimize(df, {**B, "max_avg_change_pct": 4, "ladder": {"step": 5}})
    assert lad.extra["path"] == "milp" and "ladder with max_avg_change_pct" in lad.formulation
    # disjoint budgets per category are searched together on the multiplier path
    split = {
        **B,
        "overrides": [
            {"where": {"category": ["bags"]}, "max_avg_change_pct": 2},
            {"where": {"category": ["shoes"]}, "max_avg_change_pct": 3},
        ],
    }
    plan = optimize(df, split)
    assert plan.extra["path"] == "decomposition"
    assert sum(v != 0 for v in plan.multipliers.values()) == 2


def test_infeasible_budget_is_diagnosed():
    df = demand(4, seed=3)
    p0 = df["base_price"].to_numpy()
    # margin floors force +30% on every row: no average within 5%
    df = df.with_columns(pl.Series("unit_cost", 0.91 * p0))
    with pytest.raises(InfeasibleError, match="max_avg_change_pct 5"):
        optimize(df, {**B, "min_margin_pct": 30, "max_avg_change_pct": 5})
    # each feasible alone, not together: the volume floor needs prices well below the
    # lower side of the budget
    df = demand(4, seed=3)
    e, q0 = df["elasticity"].to_numpy(), df["base_quantity"].to_numpy()
    most = 100 * float((q0 * 0.7**e).sum() / q0.sum())  # every price at -30%
    cons = {**B, "max_avg_change_pct": 2, "min_volume_pct": 0.9 * most}
    optimize(df, {k: v for k, v in cons.items() if k != "max_avg_change_pct"})  # feasible
    with pytest.raises(InfeasibleError, match="cannot be met together"):
        optimize(df, cons)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# two upper-side gaps between 1e-5 and 1e-3 (the MILP runs beside the budget plan; the
# Lagrangian plan is kept in the first, the MILP's in the second)
@example(
    seed=0,
    n_items=4,
    markets=("US", "GB"),
    inc=5.0,
    dec=2.0,
    margin=0.0,
    gap=1.0,
    vol=None,
    avg=1.0,
    cost=1.0,
    frozen=False,
    revenue=True,
)
@example(
    seed=0,
    n_items=4,
    markets=("US", "GB"),
    inc=32.699680717884284,
    dec=2.0,
    margin=0.0,
    gap=0.0,
    vol=None,
    avg=1.0724523027738413,
    cost=0.5,
    frozen=False,
    revenue=True,
)
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(1, 4),
    markets=st.sampled_from([("US", "GB"), ("US", "GB", "CH"), ("DE", "CH", "GB", "US")]),
    inc=st.floats(2, 40),
    dec=st.floats(2, 40),
    margin=st.floats(0, 40),
    gap=st.one_of(st.none(), st.floats(0, 15)),
    vol=st.one_of(st.none(), st.floats(50, 120)),
    avg=st.floats(0.2, 10),
    cost=st.floats(0.5, 2.2),
    frozen=st.booleans(),
    revenue=st.booleans(),
)
def test_every_price_satisfies_every_constraint(
    seed, n_items, markets, inc, dec, margin, gap, vol, avg, cost, frozen, revenue
):
    df = _raise_costs(
        demand(n_items, markets=markets, seed=seed, spread=0.05, e_range=(-4.0, -0.5)), cost
    )
    cons = {
        "bounds": {"max_increase_pct": inc, "max_decrease_pct": dec},
        "min_margin_pct": margin,
        "objective": "revenue" if revenue else "profit",
        "max_avg_change_pct": avg,
    }
    if gap is not None:
        cons["parity"] = {"max_gap_pct": gap}
    if vol is not None:
        cons["min_volume_pct"] = vol
    if frozen:
        cons["frozen"] = ["IT-0"]
    try:
        plan = optimize(df, cons)
    except InfeasibleError as exc:
        assert "infeasible:" in str(exc)
        assert _really_infeasible(df, cons), f"a plan meets every constraint: {exc}"
        return
    p = plan.table["recommended_price"].to_numpy()
    assert _violations(df, p, cons) == []
    assert plan.gap <= 1e-3
    lag = plan.extra.get("lagrangian_gap", 0)
    if lag > 1e-3 or plan.formulation.startswith("candidate MILP"):
        # a gap above its side's tolerance (1e-3 from rows under a binding lower side, not
        # concave; 1e-5 otherwise): the MILP ran as well, the better plan is kept, and the
        # Lagrangian bound for continuous prices is reported
        assert "max_avg_change_pct: Lagrangian gap" in plan.formulation
        assert "Lagrangian dual bound for continuous prices" in plan.certificate
    elif lag > 1e-5:  # within LOWER_SIDE_GAP_TOL: the Lagrangian plan with its proven gap
        assert "non-concave rows on the binding lower side" in plan.formulation
        assert plan.gap == pytest.approx(lag, rel=1e-9)
    if not _violations(df, df["base_price"].to_numpy(), cons):
        assert plan.objective >= plan.baseline_objective - 1e-7 * abs(plan.baseline_objective)


def test_budget_implied_cap_is_named_in_a_row_conflict():
    # an inelastic row with no max_increase_pct is capped by the budget (1.05 x 100 here);
    # its margin floor needs 100 / (1 - 0.5) = 200: the conflict names the budget, not 'nan'
    df = pl.DataFrame(
        {
            "item_id": ["A"],
            "market": ["US"],
            "elasticity": [-0.5],
            "base_price": [100.0],
            "base_quantity": [10.0],
            "unit_cost": [100.0],
        }
    )
    with pytest.raises(InfeasibleError) as err:
        optimize(
            df, {"bounds": {"max_decrease_pct": 30}, "min_margin_pct": 50, "max_avg_change_pct": 5}
        )
    msg = str(err.value)
    assert (
        "A/US: min_margin_pct 50 needs price >= 200.00 but the max_avg_change_pct 5 "
        "budget caps it at 105.00"
    ) in msg
    assert "nan" not in msg
