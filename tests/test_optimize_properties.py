"""Hypothesis: every returned price satisfies every constraint; no worse than a feasible baseline."""

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricelab.errors import InfeasibleError
from pricelab.optimize import optimize
from tests._optimize_data import demand

TOL = 1e-6
LADDERS = [None, {"step": 0.5}, {"step": 5}, {"ending": 0.99}, {"step": 10, "ending": 9}]


def _on_ladder(p, lad):
    if lad is None:
        return np.ones(p.shape, dtype=bool)
    s, off = lad.get("step", 1.0), lad.get("ending", 0.0)
    u = (p - off) / s
    return np.abs(u - np.round(u)) <= 1e-7 * np.maximum(1, np.abs(u))


def _violations(df, p, cons):
    """Names of the constraints that prices ``p`` break (tolerance TOL)."""
    p0, c, fx = (df[x].to_numpy() for x in ("base_price", "unit_cost", "fx_rate"))
    e, q0 = df["elasticity"].to_numpy(), df["base_quantity"].to_numpy()
    item, mk = df["item_id"].to_numpy(), df["market"].to_numpy()
    frozen = np.isin(item, cons.get("frozen", []))
    bad = []
    b = cons["bounds"]
    if (~frozen & (p > p0 * (1 + b["max_increase_pct"] / 100) * (1 + TOL))).any():
        bad.append("max_increase_pct")
    if (~frozen & (p < p0 * (1 - b["max_decrease_pct"] / 100) * (1 - TOL))).any():
        bad.append("max_decrease_pct")
    if (~frozen & ((p - c) / p < cons["min_margin_pct"] / 100 - TOL)).any():
        bad.append("min_margin_pct")
    if not np.allclose(p[frozen], p0[frozen], rtol=1e-12):
        bad.append("frozen")
    if not _on_ladder(p[~frozen], cons.get("ladder")).all():
        bad.append("ladder")
    if "parity" in cons:
        g = cons["parity"]["max_gap_pct"] / 100
        for it in np.unique(item):
            bp = p[item == it] / fx[item == it]
            if bp.max() > bp.min() * (1 + g) * (1 + TOL):
                bad.append("parity")
    q = q0 * (p / p0) ** e
    if "min_volume_pct" in cons and q.sum() < cons["min_volume_pct"] / 100 * q0.sum() * (1 - TOL):
        bad.append("min_volume_pct")
    if "max_avg_change_pct" in cons:
        w = p0 * q0 / fx
        avg = 100 * (w @ (p / p0) / w.sum() - 1)
        if abs(avg) > cons["max_avg_change_pct"] + TOL:
            bad.append("max_avg_change_pct")
    for od in cons.get("ordering", []):
        f = 1 + od["min_step_pct"] / 100
        for m in np.unique(mk):
            rows = [np.flatnonzero((item == it) & (mk == m)) for it in od["items"]]
            pr = [p[r[0]] for r in rows if r.size]
            if any(b_ < f * a * (1 - TOL) for a, b_ in zip(pr, pr[1:], strict=False)):
                bad.append("ordering")
    return bad


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(1, 3),
    markets=st.sampled_from([("US", "GB"), ("US", "GB", "CH"), ("DE", "CH", "GB", "US")]),
    inc=st.floats(2, 30),
    dec=st.floats(2, 30),
    margin=st.floats(0, 40),
    gap=st.one_of(st.none(), st.floats(0, 15)),
    ladder=st.sampled_from(LADDERS),
    vol=st.one_of(st.none(), st.floats(50, 120)),
    avg=st.one_of(st.none(), st.floats(0.5, 10)),
    frozen=st.booleans(),
    order=st.one_of(st.none(), st.floats(0, 8)),
    revenue=st.booleans(),
)
def test_every_price_satisfies_every_constraint(
    seed, n_items, markets, inc, dec, margin, gap, ladder, vol, avg, frozen, order, revenue
):
    df = demand(n_items, markets=markets, seed=seed, spread=0.05, e_range=(-4.0, -0.5))
    cons = {
        "bounds": {"max_increase_pct": inc, "max_decrease_pct": dec},
        "min_margin_pct": margin,
        "objective": "revenue" if revenue else "profit",
    }
    for key, val in (
        ("parity", None if gap is None else {"max_gap_pct": gap}),
        ("ladder", ladder),
        ("min_volume_pct", vol),
        ("max_avg_change_pct", avg),
    ):
        if val is not None:
            cons[key] = val
    if frozen:
        cons["frozen"] = ["IT-0"]
    if order is not None and n_items > 1:
        cons["ordering"] = [{"items": [f"IT-{i}" for i in range(n_items)], "min_step_pct": order}]
    try:
        plan = optimize(df, cons)
    except InfeasibleError as exc:
        assert "infeasible:" in str(exc)
        return
    p = plan.table["recommended_price"].to_numpy()
    assert _violations(df, p, cons) == []
    assert plan.gap <= 1e-3
    p0 = df["base_price"].to_numpy()
    if not _violations(df, p0, cons):
        assert plan.objective >= plan.baseline_objective - 1e-7 * abs(plan.baseline_objective)


def test_violation_checker_detects_each_constraint():
    df = demand(2, markets=("US", "GB"), seed=3, spread=0.0)
    p0 = df["base_price"].to_numpy()
    cons = {
        "bounds": {"max_increase_pct": 5, "max_decrease_pct": 5},
        "min_margin_pct": 0,
        "parity": {"max_gap_pct": 1},
        "ladder": {"step": 0.5},
        "min_volume_pct": 100,
        "ordering": [{"items": ["IT-1", "IT-0"], "min_step_pct": 0}],
    }
    up = p0 * 1.1
    assert "max_increase_pct" in _violations(df, up, cons)
    assert "min_volume_pct" in _violations(df, up, cons)
    assert "ladder" in _violations(df, np.round(p0, 0) + 0.3, cons)
    skew = p0 * np.array([1.04, 0.96, 1.0, 1.0])
    assert "parity" in _violations(df, skew, cons)
    hi0 = pl.Series(p0).to_numpy().copy()
    hi0[df["item_id"].to_numpy() == "IT-1"] = 1000.0
    assert "ordering" in _violations(df, hi0, cons)
