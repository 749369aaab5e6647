"""Experiment design: stratified randomisation, determinism, balance, bad inputs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricelab.errors import DataError, UsageError
from pricelab.experiment import design_experiment
from pricelab.experiment.design import randomise
from pricelab.experiment.synthetic import synthetic_sales, synthetic_units, week_starts

START = dt.date(2024, 1, 1)


@pytest.fixture(scope="module")
def data():
    units = synthetic_units(90, ("US", "GB", "DE", "JP"), seed=11)
    history = synthetic_sales(units, week_starts(START, 10), seed=12)
    return units.drop("base_rate"), history


def _design(data, **kw):
    units, history = data
    args = {
        "name": "t",
        "cells": [-10, 0, 5, 10],
        "stratify": ["category", "market"],
        "weeks": 4,
        "seed": 7,
    }
    args.update(kw)
    return design_experiment(units, history, **args)


def _max_gap(counts: pl.DataFrame, by: list[str], cells: int) -> int:
    """Largest difference in cell counts within each group (cells with none count as 0)."""
    wide = counts.pivot(on="cell", index=by, values="len").fill_null(0)
    vals = wide.drop(by).to_numpy()
    assert vals.shape[1] <= cells
    full = np.zeros((vals.shape[0], cells))
    full[:, : vals.shape[1]] = vals
    return int((full.max(axis=1) - full.min(axis=1)).max())


def test_stratification_is_exact_within_strata_and_overall(data):
    for seed in range(5):
        d = _design(data, seed=seed)
        a = d.assignment
        assert a.height == data[0].height
        per = a.group_by("stratum", "cell").len()
        assert _max_gap(per, ["stratum"], 4) <= 1
        overall = a.group_by("cell").len()["len"].to_numpy()
        assert overall.max() - overall.min() <= 1
        assert set(a["stratum"].unique()) == {
            f"category={c}|market={m}"
            for c, m in data[0].select("category", "market").unique().iter_rows()
        }


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 17), min_size=1, max_size=8),
    k=st.integers(2, 5),
    seed=st.integers(0, 10_000),
)
def test_blocked_counts_property(sizes, k, seed):
    ids = [f"u{s}-{i}" for s, n in enumerate(sizes) for i in range(n)]
    strata = [f"s{s}" for s, n in enumerate(sizes) for _ in range(n)]
    frame = pl.DataFrame({"unit_id": ids, "stratum": strata})
    cells = [float(c) for c in range(k)]
    out = randomise(frame, cells, seed)
    counts = out.group_by("stratum", "price_change_pct").len()
    for s, n in enumerate(sizes):
        c = counts.filter(pl.col("stratum") == f"s{s}")["len"].to_list()
        c = c + [0] * (k - len(c))
        assert max(c) - min(c) <= 1 and sum(c) == n
    tot = out.group_by("price_change_pct").len()["len"].to_list()
    tot = tot + [0] * (k - len(tot))
    assert max(tot) - min(tot) <= 1


def test_same_seed_same_assignment_and_row_order_irrelevant(data):
    units, history = data
    a1 = _design(data).assignment
    a2 = _design(data).assignment
    assert a1.equals(a2)
    shuffled = units.sample(fraction=1.0, shuffle=True, seed=3)
    a3 = design_experiment(
        shuffled,
        history.sample(fraction=1.0, shuffle=True, seed=4),
        name="t",
        cells=[-10, 0, 5, 10],
        stratify=["category", "market"],
        weeks=4,
        seed=7,
    ).assignment
    assert a1.equals(a3)
    other = _design(data, seed=8).assignment
    assert not a1["cell"].equals(other["cell"])


def test_item_unit_shares_cell_across_markets(data):
    d = _design(data, unit="item", stratify=["category"])
    per_item = d.assignment.group_by("item_id").agg(
        pl.col("cell").n_unique().alias("k"), pl.len().alias("m")
    )
    assert (per_item["k"] == 1).all() and (per_item["m"] == 4).all()
    items = d.assignment.unique("item_id").group_by("stratum", "cell").len()
    assert _max_gap(items, ["stratum"], 4) <= 1
    assert (
        d.power["n_control"][0]
        == d.assignment.filter(pl.col("cell") == "control")["item_id"].n_unique()
    )
    with pytest.raises(UsageError, match="'market' varies across the markets"):
        _design(data, unit="item", stratify=["market"])


def test_assignment_columns_and_prices(data):
    d = _design(data)
    a = d.assignment
    assert a.columns[:7] == [
        "item_id",
        "market",
        "cell",
        "price_change_pct",
        "stratum",
        "current_price",
        "test_price",
    ]
    expect = np.round(
        a["current_price"].to_numpy() * (1 + a["price_change_pct"].to_numpy() / 100), 2
    )
    assert np.allclose(a["test_price"].to_numpy(), expect)
    assert set(a["cell"]) == {"-10%", "control", "+5%", "+10%"}
    assert d.start == START + dt.timedelta(weeks=10)
    assert d.end == d.start + dt.timedelta(days=27)
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["start"] == d.start.isoformat() and len(doc["assignment"]) == a.height
    assert "MDE units" in d.summary


def test_balance_matches_hand_computation(data):
    units, history = data
    d = _design(data)
    weeks = history["date"].n_unique()
    per_unit = (
        history.group_by("item_id", "market")
        .agg((pl.col("quantity").sum() / weeks).alias("u"))
        .join(d.assignment, on=["item_id", "market"])
    )
    u = {c: per_unit.filter(pl.col("cell") == c)["u"].to_numpy() for c in ("control", "+10%")}
    sd = np.sqrt((u["control"].var(ddof=1) + u["+10%"].var(ddof=1)) / 2)
    expect = (u["+10%"].mean() - u["control"].mean()) / sd
    row = d.balance.filter((pl.col("metric") == "units") & (pl.col("cell") == "+10%"))
    assert row["std_diff"].item() == pytest.approx(expect, rel=1e-9)
    assert row["mean"].item() == pytest.approx(u["+10%"].mean(), rel=1e-12)
    assert set(d.balance["metric"]) == {"units", "revenue", "price", "current_price"}
    # randomisation balances: no standardized difference beyond 0.35 with ~90 units a cell
    assert d.balance["std_diff"].abs().max() < 0.35


def test_start_option_and_history_after_start_ignored(data):
    d = _design(data, start="2024-02-05")
    assert d.start == dt.date(2024, 2, 5)
    assert d.power_details["components"]["pre_weeks"] == 5
    d4 = _design(data, pre_weeks=4)
    assert d4.power_details["components"]["pre_weeks"] == 4
    with pytest.raises(UsageError, match="pre_weeks"):
        _design(data, pre_weeks=1)
    with pytest.raises(UsageError, match="not a Monday"):
        _design(data, start="2024-02-06")
    with pytest.raises(UsageError, match="ISO date"):
        _design(data, start="next week")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cells": [-10, 10]}, "no control"),
        ({"cells": [0]}, "at least one treated cell"),
        ({"cells": [0, 5, 5]}, "repeat"),
        ({"cells": [0, -100]}, "above -100%"),
        ({"cells": ["a", 0]}, "must be numbers"),
        ({"stratify": ["category", "colour"]}, "unknown stratify column 'colour'"),
        ({"unit": "market"}, "unit must be one of"),
        ({"weeks": 0}, "weeks must be"),
        ({"seed": -1}, "seed must be"),
        ({"mde": 0}, "mde"),
        ({"alpha": 1.5}, "alpha"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_arguments_raise_usage_error(data, kw, message):
    with pytest.raises(UsageError, match=message):
        _design(data, **kw)


def test_bad_data_raise_data_error(data):
    units, history = data
    with pytest.raises(DataError, match="duplicate item_id"):
        design_experiment(
            pl.concat([units, units.head(1)]), history, name="t", cells=[0, 5], weeks=2, seed=1
        )
    with pytest.raises(DataError, match="current_price must be > 0"):
        design_experiment(
            units.with_columns(pl.lit(0.0).alias("current_price")),
            history,
            name="t",
            cells=[0, 5],
            weeks=2,
            seed=1,
        )
    with pytest.raises(DataError, match="no pre-period sales"):
        design_experiment(units, history.head(0), name="t", cells=[0, 5], weeks=2, seed=1)
    with pytest.raises(UsageError, match="missing column"):
        design_experiment(
            units.drop("current_price"), history, name="t", cells=[0, 5], weeks=2, seed=1
        )
    with pytest.raises(DataError, match="duplicate rows"):
        design_experiment(
            units, pl.concat([history, history.head(1)]), name="t", cells=[0, 5], weeks=2, seed=1
        )
