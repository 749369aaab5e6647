"""``binding`` on cross-route plans with stock: a row's units depend on its siblings' prices, so
a stock limit holds the siblings whose prices protect it as well as its own rows. Each label
is checked against brute force over every ladder plan: the rows that name a stock limit are
exactly the rows whose best ladder price changes when that limit alone is lifted (``inventory``
on the rows that draw on the stock, ``inventory of ITEM/MARKET`` or ``inventory of pool ID`` on
a sibling), and ``inventory`` alone on a row that only lifting several limits together moves."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.optimize.cross import optimize_cross
from pricelab.report.explorer import _why
from tests._cross_cases import brute, brute_holds, category, two_markets

CONS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30},
    "min_margin_pct": 20,
    "ladder": {"step": 5},
    "inventory": True,
}


def _case(name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Demand (with ``stock`` and ``stock_pool``) and cross tables of each case."""
    pool: list[str | None] = [None, None, None]
    if name == "sibling":  # A's stock holds B and C (A stays on its cap)
        (demand, cross), stock = category(), [160.0, None, None]
    elif name == "own and sibling":  # A's and C's stock each hold their own row and the other
        (demand, cross), stock = category(seed=1), [1102.0, None, 772.0]
    elif name == "together":  # A's stock or C's holds B: lifting one leaves the other
        (demand, cross), stock = category(seed=3), [147.0, None, 1527.0]
    else:  # A's pool over US and GB holds A/GB and its sibling B/GB
        (demand, cross), stock = two_markets(), [946.0, None, 946.0, None]
        pool = ["P", None, "P", None]
    return demand.with_columns(
        stock=pl.Series(stock, dtype=pl.Float64), stock_pool=pl.Series(pool, dtype=pl.String)
    ), cross


def _limits(demand: pl.DataFrame) -> list[tuple[np.ndarray, float, str]]:
    """Each stock limit from the table: (rows, stock, whose), recomputed from the raw columns."""
    stock, pool = demand["stock"].to_numpy(), demand["stock_pool"].to_list()
    out = []
    for pid in sorted({x for x in pool if x is not None}):
        rows = np.array([i for i, x in enumerate(pool) if x == pid])
        out.append((rows, float(stock[rows[0]]), f"pool {pid}"))
    for i in np.flatnonzero(~np.isnan(stock)).tolist():
        if pool[i] is None:
            out.append(
                (np.array([i]), float(stock[i]), f"{demand['item_id'][i]}/{demand['market'][i]}")
            )
    return out


@pytest.mark.parametrize("name", ["sibling", "own and sibling", "together", "pool"])
def test_stock_labels_match_brute_force_without_each_limit(name: str) -> None:
    demand, cross = _case(name)
    plan = optimize_cross(demand, cross, CONS)
    p, want = brute_holds(demand, cross, CONS, _limits(demand))
    assert plan.table["recommended_price"].to_numpy() == pytest.approx(p, rel=1e-12)
    stock = [{x for x in w if x.startswith("inventory")} for w in want]
    got = [
        {x for x in b.split(",") if x.startswith("inventory")}
        for b in plan.table["binding"].to_list()
    ]
    assert got == stock, plan.table.select("item_id", "market", "recommended_price", "binding")
    # each case holds what its name says
    flat = [x for w in stock for x in w]
    assert any(x.startswith("inventory of") for x in flat) or name == "together"
    if name in ("own and sibling", "pool"):
        assert "inventory" in flat
    if name == "together":
        assert stock[1] == {"inventory"}


def _kinds(binding: str) -> set[str]:
    """A row's labels as ``brute_holds`` names them: ``lo`` (a floor), ``hi`` (the cap) and
    the stock labels."""
    out = set()
    for x in filter(None, binding.split(",")):
        if x in ("max_decrease_pct", "min_margin_pct"):
            out.add("lo")
        elif x == "max_increase_pct":
            out.add("hi")
        elif x.startswith("inventory"):
            out.add(x)
    return out


#: (seed, margin floor %, max increase %, stock per row of A, B, C in the US)
HELD = {
    # C one ladder step above its floor, its own stock binding: lifting either alone leaves
    # C at 70, lifting both takes it to 65 (was: an empty label)
    "floor and own stock": (3, 20, 10, [None, None, 1213.0]),
    # C at 135 on its stock and one step below its cap, which holds it as well (was: the cap
    # missing), B on its floor and C's stock ("inventory of C/US")
    "cap and own stock, sibling stock": (5, 20, 30, [None, None, 526.0]),
    # A one step below its cap: its own optimum is lower, the joint one higher (was: empty)
    "cap under cross demand": (2, 40, 10, [None, None, None]),
}


@pytest.mark.parametrize("name", list(HELD))
def test_row_limits_and_stock_that_hold_a_row_are_all_named(name: str) -> None:
    """Every held row names everything that holds it, against brute force over every ladder
    plan: a limit that holds alone, a stock that holds alone, and a limit and a stock that
    hold a row together (neither lifted alone moves it, both lifted do)."""
    seed, margin, inc, stock = HELD[name]
    demand, cross = category(seed=seed)
    demand = demand.with_columns(stock=pl.Series(stock, dtype=pl.Float64))
    cons = {
        **CONS,
        "bounds": {"max_increase_pct": inc, "max_decrease_pct": 30},
        "min_margin_pct": margin,
    }
    plan = optimize_cross(demand, cross, cons)
    limits = [
        (np.array([i]), s, f"{x}/US")
        for i, (x, s) in enumerate(zip("ABC", stock, strict=True))
        if s
    ]
    p, want = brute_holds(demand, cross, cons, limits)
    assert plan.table["recommended_price"].to_numpy() == pytest.approx(p, rel=1e-12)
    got = [_kinds(b) for b in plan.table["binding"].to_list()]
    assert got == want, plan.table.select("item_id", "recommended_price", "binding")
    assert all(got)  # every row here is held by something


def test_a_volume_floor_on_one_category_holds_the_siblings_outside_it() -> None:
    """A floor on A's units (an override on its category) is met through B's and C's prices
    as well: ``min_volume_pct`` is named on exactly the rows that lifting it moves."""
    demand, cross = category()
    demand = demand.with_columns(category=pl.Series(["totes", "bags", "bags"]))
    cons = {
        **{k: v for k, v in CONS.items() if k != "inventory"},
        "overrides": [{"where": {"category": "totes"}, "min_volume_pct": 110}],
    }
    plan = optimize_cross(demand, cross, cons)
    p = plan.table["recommended_price"].to_numpy()
    floor = brute(demand, cross, cons, lambda _p, q: q[0] >= 110.0 * (1 - 1e-12))[1]
    free = brute(demand, cross, cons, lambda _p, q: True)[1]
    assert p == pytest.approx(floor, rel=1e-12)
    moved = ~np.isclose(free, p, rtol=1e-9, atol=0.0)
    named = np.array(["min_volume_pct" in b.split(",") for b in plan.table["binding"]])
    assert (named == moved).all(), plan.table.select("item_id", "recommended_price", "binding")
    assert named[1:].any()  # a sibling outside the floor's category is held by it


def test_the_sibling_label_reaches_the_csv_and_the_report(tmp_path, cli) -> None:
    demand, cross = _case("sibling")
    demand.drop("stock_pool").write_csv(tmp_path / "demand.csv")
    cross.write_csv(tmp_path / "cross.csv")
    (tmp_path / "c.yaml").write_text(
        "horizon_weeks: 4\nbounds: {max_increase_pct: 30, max_decrease_pct: 30}\n"
        "min_margin_pct: 20\nladder: {step: 5}\ninventory: true\n"
    )
    r = cli(
        "optimize", "--demand", tmp_path / "demand.csv", "--cross", tmp_path / "cross.csv",
        "--constraints", tmp_path / "c.yaml", "--db", tmp_path / "x.duckdb",
        "--output", tmp_path / "plan.csv",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    t = pl.read_csv(tmp_path / "plan.csv")
    assert [("inventory of A/US" in b.split(",")) for b in t["binding"].fill_null("")] == [
        False,
        True,
        True,
    ]
    assert "the stock of A/US, which this price protects (inventory)" in _why(t.row(1, named=True))


def test_beyond_the_single_limit_checks_every_held_row_says_inventory(monkeypatch) -> None:
    """With more stock limits reaching the held rows than are re-solved one by one, each row
    that lifting every stock limit together moves says ``inventory`` (the key's own
    counterfactual), checked against brute force."""
    from pricelab.optimize import binding

    demand, cross = _case("own and sibling")
    monkeypatch.setattr(binding, "LINK_CHECKS", 1)
    plan = optimize_cross(demand, cross, CONS)
    p = plan.table["recommended_price"].to_numpy()
    free = brute(demand, cross, CONS, lambda _p, _q: True)[1]
    moved = ~np.isclose(free, p, rtol=1e-9, atol=0.0)
    got = [
        {x for x in b.split(",") if x.startswith("inventory")}
        for b in plan.table["binding"].to_list()
    ]
    assert got == [{"inventory"} if m else set() for m in moved]
    assert moved.sum() >= 2
