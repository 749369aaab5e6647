"""``binding`` names what really holds each price: every label is checked against a re-solve
with that one constraint removed (through the public ``optimize``, constraints as a user
writes them), and every coupling constraint whose removal moves a row is named on it.

The issue's case: bounds, margin floor, parity, .99 endings and an average-change budget
labelled TOTE-03/GB ``max_avg_change_pct,ladder`` although parity moved it.
"""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest

from pricelab.optimize import optimize
from tests._optimize_data import demand as synthetic_demand

ROWS = [  # item, market, elasticity, price, weekly units, unit cost, fx
    ("TOTE-03", "GB", -1.6, 40.0, 15.0, 18.0, 0.85),
    ("TOTE-03", "DE", -2.8, 52.0, 20.0, 22.0, 1.0),
    ("TOTE-03", "US", -2.2, 55.0, 30.0, 20.0, 1.08),
    ("MUG-02", "GB", -2.5, 12.0, 60.0, 5.0, 0.85),
    ("MUG-02", "DE", -2.0, 14.0, 40.0, 5.5, 1.0),
]
COLS = ["item_id", "market", "elasticity", "base_price", "base_quantity", "unit_cost", "fx_rate"]
HAND = pl.DataFrame(ROWS, schema=COLS, orient="row")
ISSUE = {
    "objective": "profit",
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 15, "max_decrease_pct": 20},
    "min_margin_pct": 25,
    "parity": {"max_gap_pct": 10},
    "ladder": {"ending": 0.99},
    "max_avg_change_pct": 3,
}
#: the key of each label in the constraints file (path into the dict)
PATH = {
    "max_increase_pct": ("bounds", "max_increase_pct"),
    "max_decrease_pct": ("bounds", "max_decrease_pct"),
    "min_margin_pct": ("min_margin_pct",),
    "parity": ("parity",),
    "ladder": ("ladder",),
    "max_avg_change_pct": ("max_avg_change_pct",),
    "min_volume_pct": ("min_volume_pct",),
}
COUPLED = ("parity", "ladder", "max_avg_change_pct", "min_volume_pct")
KEYS = ["item_id", "market"]


def _without(cons: dict[str, Any], label: str) -> dict[str, Any]:
    out = copy.deepcopy(cons)
    *head, last = PATH[label]
    d = out
    for k in head:
        d = d[k]
    del d[last]
    return out


def _prices(demand: pl.DataFrame, cons: dict[str, Any]) -> pl.DataFrame:
    return optimize(demand, cons).table.select(*KEYS, "recommended_price", "binding")


def _band_broken(demand: pl.DataFrame, plan: pl.DataFrame, gap_pct: float) -> set[str]:
    """Items whose prices (base currency) do not fit one parity band."""
    b = plan.join(demand.select(*KEYS, "fx_rate"), on=KEYS).with_columns(
        (pl.col("recommended_price") / pl.col("fx_rate")).alias("b")
    )
    g = b.group_by("item_id").agg(pl.col("b").min().alias("lo"), pl.col("b").max().alias("hi"))
    return set(g.filter(pl.col("hi") > pl.col("lo") * (1 + gap_pct / 100) * (1 + 1e-6))["item_id"])


def check_against_resolves(demand: pl.DataFrame, cons: dict[str, Any]) -> pl.DataFrame:
    """Assert the plan's labels agree with re-solves without each constraint; the plan."""
    plan = _prices(demand, cons)
    labels = {
        (r["item_id"], r["market"]): r["binding"].split(",") for r in plan.iter_rows(named=True)
    }
    present = [k for k, path in PATH.items() if _has(cons, path)]
    for key in present:
        free = _prices(demand, _without(cons, key))
        both = plan.join(free, on=KEYS, suffix="_free")
        broken = (
            _band_broken(demand, free, cons["parity"]["max_gap_pct"]) if key == "parity" else None
        )
        for r in both.iter_rows(named=True):
            row = (r["item_id"], r["market"])
            moved = (
                abs(r["recommended_price_free"] - r["recommended_price"])
                > 1e-6 * r["recommended_price"]
            )
            named = key in labels[row]
            if key in COUPLED:  # sound and complete
                if named:
                    assert moved, f"{row}: {key} named but the price stays without it"
                if moved and (broken is None or r["item_id"] in broken):
                    assert named, f"{row}: without {key} the price moves, binding={labels[row]}"
            elif named:  # a row limit: lifted for that row alone, the price moves
                p = _row_price(demand, _lifted(cons, key, *row), row)
                assert abs(p - r["recommended_price"]) > 1e-6 * p, f"{row}: {key} holds nothing"
    return plan


#: a row limit lifted by an override for one row (a margin floor down to the unit cost)
LIFT = {
    "max_increase_pct": {"bounds": {"max_increase_pct": 50}},
    "max_decrease_pct": {"bounds": {"max_decrease_pct": 60}},
    "min_margin_pct": {"min_margin_pct": 0},
}


def _lifted(cons: dict[str, Any], key: str, item: str, market: str) -> dict[str, Any]:
    out = copy.deepcopy(cons)
    out.setdefault("overrides", []).append(
        {"where": {"item_id": item, "market": market}, **LIFT[key]}
    )
    return out


def _row_price(demand: pl.DataFrame, cons: dict[str, Any], row: tuple[str, str]) -> float:
    t = _prices(demand, cons).filter((pl.col("item_id") == row[0]) & (pl.col("market") == row[1]))
    return float(t["recommended_price"][0])


def _has(cons: dict[str, Any], path: tuple[str, ...]) -> bool:
    d: Any = cons
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return False
        d = d[k]
    return True


def test_issue_case_parity_is_named_where_it_moves_the_price() -> None:
    plan = check_against_resolves(HAND, ISSUE)
    gb = plan.filter((pl.col("item_id") == "TOTE-03") & (pl.col("market") == "GB")).row(
        0, named=True
    )
    assert "parity" in gb["binding"].split(",")
    free = _prices(HAND, _without(ISSUE, "parity"))
    gb_free = free.filter((pl.col("item_id") == "TOTE-03") & (pl.col("market") == "GB"))
    assert gb_free["recommended_price"][0] != pytest.approx(gb["recommended_price"])


@pytest.mark.parametrize(
    "drop",
    [
        "ladder",  # continuous prices: budget multipliers or the MILP with parity
        "max_avg_change_pct",  # ladder + parity: exact enumeration
        "parity",  # ladder + budget: the candidate MILP
    ],
)
def test_labels_agree_with_resolves_on_each_route(drop: str) -> None:
    check_against_resolves(HAND, _without(ISSUE, drop))


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_agree_with_resolves_under_parity_and_a_volume_floor(seed: int) -> None:
    """Decomposition route (band search + one volume multiplier) on synthetic items."""
    d = synthetic_demand(4, seed=seed, spread=0.2)
    cons = {
        "bounds": {"max_increase_pct": 10, "max_decrease_pct": 25},
        "parity": {"max_gap_pct": 5},
        "min_volume_pct": 95,
    }
    check_against_resolves(d, cons)


def test_slack_parity_is_not_named() -> None:
    """A band wide enough for every market's own optimum holds nothing."""
    plan = _prices(
        HAND,
        {
            "bounds": {"max_increase_pct": 15, "max_decrease_pct": 20},
            "parity": {"max_gap_pct": 500},
        },
    )
    assert not any("parity" in b for b in plan["binding"].to_list())


def test_summary_says_what_holds_inelastic_rows() -> None:
    """Inelastic rows held by parity are not 'pushed to their upper bound'."""
    d = HAND.with_columns(
        pl.when((pl.col("item_id") == "TOTE-03") & (pl.col("market") == "GB"))
        .then(-0.6)
        .otherwise(pl.col("elasticity"))
        .alias("elasticity")
    )
    cons = {
        "bounds": {"max_increase_pct": 30, "max_decrease_pct": 20},
        "parity": {"max_gap_pct": 5},
    }
    plan = optimize(d, cons)
    gb = plan.table.filter((pl.col("item_id") == "TOTE-03") & (pl.col("market") == "GB"))
    assert gb["binding"][0] == "parity"
    assert "pushed to their upper bound" not in plan.summary
    assert "1 inelastic row(s) (-1 <= e < 0) held by: parity 1" in plan.summary
