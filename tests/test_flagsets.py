"""The named flag sets (display / gate / monitor-fit) and the one flag matcher."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricelab.api.estimate import EstimateRun
from pricelab.elasticity import estimate
from pricelab.elasticity.groupfit import FLAG_NAMES
from pricelab.elasticity.results import (
    DISPLAY_FLAGS,
    GATE_FLAGS,
    MONITOR_FIT_FLAGS,
    UNFIT_FLAGS,
    has_any_flag,
)
from pricelab.registry import GATE_FLAGS as REGISTRY_GATE_FLAGS
from pricelab.registry import GateConfig, flagged_share

SETS = {
    "display": DISPLAY_FLAGS,
    "gate": GATE_FLAGS,
    "monitor-fit": MONITOR_FIT_FLAGS,
    "unfit": UNFIT_FLAGS,
}


def _flag_panel() -> pl.DataFrame:
    """Groups built to trip each flag: flat price, no sales, e=+1.5, e=-0.5, few and 2 weeks."""
    d0 = dt.date(2023, 1, 2)
    rows = []
    for w in range(30):
        day = d0 + dt.timedelta(weeks=w)
        p = 100 * (1 + 0.2 * np.sin(w))
        rows += [
            ("FLAT", day, 100.0, 3 + w % 2),
            ("ZERO", day, 100.0 + w, 0),
            ("POS", day, p, int(20 * (p / 100) ** 1.5)),
            ("INEL", day, p, int(200 * (p / 100) ** -0.5)),
            ("GOOD", day, p, int(50 * (p / 100) ** -2.5)),
        ]
    rows += [("FEW", d0 + dt.timedelta(weeks=w), 90.0 + w, 5) for w in range(4)]
    rows += [("TWO", d0 + dt.timedelta(weeks=w), 90.0 + 5 * w, 5 + w) for w in range(2)]
    df = pl.DataFrame(
        rows,
        schema={"item_id": pl.String, "date": pl.Date, "price": pl.Float64, "quantity": pl.Int64},
        orient="row",
    )
    noise = np.random.default_rng(1).normal(size=df.height)
    return df.with_columns(pl.lit("US").alias("market"), pl.Series("z", noise))


@pytest.fixture(scope="module")
def emitted() -> dict[str, dict[str, str]]:
    """item -> flags string, per estimator run on :func:`_flag_panel`."""
    sales = _flag_panel()
    runs = {
        "ols": {"model": "ols"},
        "poisson": {"model": "poisson"},
        "iv": {"model": "iv", "instrument": "z"},  # z is unrelated to price
        "ols-min1": {"model": "ols", "min_obs": 1, "controls": None},  # 2 weeks, 2 params
        # price levels as fixed effects: the price varies but nothing is left of it
        "ols-fe": {"model": "ols", "fixed_effects": ["price"]},
    }
    out = {}
    for name, kw in runs.items():
        t = estimate(sales, **kw).elasticities
        out[name] = dict(zip(t["item_id"], t["flags"], strict=True))
    return out


@pytest.mark.parametrize("name", SETS)
def test_each_set_names_real_flags_without_repeats(name: str) -> None:
    flags = SETS[name]
    assert isinstance(flags, tuple) and len(set(flags)) == len(flags) > 0
    assert set(flags) <= set(FLAG_NAMES)


def test_every_flag_in_the_sets_is_emitted_by_an_estimator(emitted) -> None:
    seen = {f for run in emitted.values() for s in run.values() for f in s.split(",") if f}
    assert set(DISPLAY_FLAGS) | set(GATE_FLAGS) | set(MONITOR_FIT_FLAGS) <= seen
    # and where the panel says they should be
    assert emitted["ols"]["POS"] == "positive" and emitted["ols"]["INEL"] == "inelastic"
    assert emitted["ols"]["FLAT"] == "no_price_variation" and emitted["ols"]["FEW"] == "few_obs"
    assert emitted["poisson"]["ZERO"] == "no_sales"
    assert "weak_instrument" in emitted["iv"]["GOOD"]
    assert emitted["ols-min1"]["TWO"] == "failed"
    assert emitted["ols-fe"]["GOOD"] == "absorbed" and emitted["ols-fe"]["FLAT"] != "absorbed"


def test_the_three_meanings_stay_distinct() -> None:
    assert set(GATE_FLAGS) < set(DISPLAY_FLAGS)  # gate: estimate quality only
    assert set(MONITOR_FIT_FLAGS) < set(DISPLAY_FLAGS)  # monitor: data / fit failures
    assert "positive" not in MONITOR_FIT_FLAGS and "inelastic" not in GATE_FLAGS
    assert not {"shrunk", "separated"} & set(DISPLAY_FLAGS)  # informational only
    assert REGISTRY_GATE_FLAGS is GATE_FLAGS and GateConfig().flags == GATE_FLAGS


def test_poisson_group_without_sales_is_shown_as_flagged() -> None:
    """A no-sales group has only ``no_sales`` and a NaN estimate: the display must list it."""
    t = estimate(_flag_panel(), model="poisson").elasticities
    zero = t.filter(pl.col("item_id") == "ZERO")
    assert zero["flags"][0] == "no_sales" and np.isnan(zero["elasticity"][0])
    shown = EstimateRun(None, None, t).flagged()["item_id"].to_list()
    assert shown == ["FEW", "FLAT", "INEL", "POS", "TWO", "ZERO"]  # not GOOD


def _match(values: list[str | None], names) -> list[bool]:
    return (
        pl.DataFrame({"flags": values}, schema={"flags": pl.String})
        .select(has_any_flag(names))["flags"]
        .to_list()
    )


def test_whole_names_only_not_substrings() -> None:
    """A name that is a substring of another flag must not match it (a regex would)."""
    values = ["inelastic", "no_sales", "few_obs,inelastic", "elastic", "", None]
    assert _match(values, ["elastic"]) == [False, False, False, True, False, False]
    assert _match(values, ["sales"]) == [False] * 6
    regex = pl.Series(values).fill_null("").str.contains("elastic").to_list()  # the old way
    assert regex == [True, False, True, True, False, False]
    assert _match(values, ["no_sales", "inelastic"]) == [True, True, True, False, False, False]
    assert _match(["few_obs, positive", " positive"], ["positive"]) == [True, True]
    assert _match(values, []) == [False] * 6


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from(FLAG_NAMES), max_size=4, unique=True), min_size=1, max_size=20
    ),
    names=st.sampled_from(list(SETS.values())),
)
def test_matcher_agrees_with_set_intersection(rows, names) -> None:
    values = [",".join(r) for r in rows]
    assert _match(values, names) == [bool(set(r) & set(names)) for r in rows]


def test_flagged_share_and_distribution_use_the_named_sets() -> None:
    combos = [",".join(c) for k in range(3) for c in itertools.combinations(FLAG_NAMES, k)]
    t = pl.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(len(combos))],
            "market": "US",
            "category": "bags",
            "elasticity": -2.0,
            "std_error": 0.1,
            "flags": combos,
        }
    )
    expect_gate = np.mean([bool(set(c.split(",")) & set(GATE_FLAGS)) for c in combos])
    expect_display = np.mean([bool(set(c.split(",")) & set(DISPLAY_FLAGS)) for c in combos])
    assert flagged_share(t) == pytest.approx(expect_gate)
    dist = EstimateRun(None, None, t).distribution()
    assert dist["share_flagged"][0] == pytest.approx(expect_display)
