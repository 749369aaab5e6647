"""``pricelab experiment design|analyze`` through the CLI on a real database.

The test window's sales are simulated with a known elasticity (-2) on the sample items,
ingested like any other sales, and the analysis must find it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.store import Store
from tests.conftest import copy_db

TRUE_E = -2.0


@pytest.fixture
def sample_db(tmp_path: Path, sample_template: Path) -> Path:
    return copy_db(sample_template, tmp_path / "exp.duckdb")


def _design(cli, db: Path, name: str = "spring", *extra: object):
    return cli(
        "experiment",
        "design",
        "--db",
        db,
        "--name",
        name,
        "--cells=-10,0,10",
        "--weeks",
        8,
        "--seed",
        11,
        "--stratify",
        "category,market",
        *extra,
    )


def _simulate_window(db: Path, name: str, path: Path, seed: int = 5) -> Path:
    with Store.open(db, read_only=True) as s:
        header = s.query("SELECT * FROM experiments WHERE name = ?", [name]).row(0, named=True)
        a = s.query("SELECT * FROM experiment_assignments WHERE experiment = ?", [name])
        base = s.query(
            "SELECT item_id, market, avg(quantity) AS rate FROM sales "
            "WHERE date >= (SELECT max(date) FROM sales) - INTERVAL 25 WEEK "
            "GROUP BY ALL"
        )
    rng = np.random.default_rng(seed)
    a = a.join(base, on=["item_id", "market"], how="left").with_columns(
        pl.col("rate").fill_null(0.1) + 0.2
    )
    rows = []
    for w in range(header["weeks"]):
        date = header["start"] + dt.timedelta(weeks=w)
        mu = a["rate"].to_numpy() * (1 + a["price_change_pct"].to_numpy() / 100) ** TRUE_E
        q = rng.poisson(mu)
        rows.append(
            pl.DataFrame(
                {
                    "item_id": a["item_id"],
                    "market": a["market"],
                    "date": [date] * a.height,
                    "price": a["test_price"],
                    "quantity": q,
                }
            )
        )
    pl.concat(rows).write_csv(path)
    return path


def test_design_then_analyze_recovers_elasticity(cli, sample_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "assign.csv"
    res = _design(cli, sample_db, "spring", "--output", out, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    counts = doc["cell_counts"]
    assert sum(counts.values()) == pl.read_csv(out).height
    assign = pl.read_csv(out)
    assert {"item_id", "market", "cell", "price_change_pct", "stratum"} <= set(assign.columns)
    # stratified: in every stratum the cell counts differ by at most one
    spread = (
        assign.group_by("stratum", "cell")
        .len()
        .group_by("stratum")
        .agg((pl.col("len").max() - pl.col("len").min()).alias("d"), pl.len().alias("k"))
    )
    assert (spread["d"] <= 1).all()
    # no sales in the window yet: exit 1 naming the dates
    res = cli("experiment", "analyze", "--db", sample_db, "--name", "spring")
    assert res.exit_code == 1
    assert doc["start"] in res.stderr
    window = _simulate_window(sample_db, "spring", tmp_path / "window.csv")
    assert cli("ingest", "--db", sample_db, "--sales", window).exit_code == 0
    res = cli(
        "experiment",
        "analyze",
        "--db",
        sample_db,
        "--name",
        "spring",
        "--json",
        "--output",
        tmp_path / "effects.csv",
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    pooled = doc["pooled"]
    assert pooled["elasticity_low"] <= TRUE_E <= pooled["elasticity_high"]
    effects = pl.read_csv(tmp_path / "effects.csv")
    assert set(effects["price_change_pct"].to_list()) == {-10.0, 10.0}
    assert not doc["srm"]["mismatch"]


def test_same_seed_same_assignment(cli, tmp_path: Path) -> None:
    outs = []
    for k in range(2):
        db = tmp_path / f"d{k}.duckdb"
        api.ingest(db, **api.sample_files())
        out = tmp_path / f"a{k}.csv"
        assert _design(cli, db, "x", "--output", out).exit_code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_experiment_bad_input(cli, sample_db: Path) -> None:
    res = cli(
        "experiment",
        "design",
        "--db",
        sample_db,
        "--name",
        "a",
        "--cells=-10,10",
        "--weeks",
        4,
        "--seed",
        1,
    )
    assert res.exit_code == 2
    assert "control" in res.stderr
    res = _design(cli, sample_db, "b", "--stratify", "colour")
    assert res.exit_code == 2
    assert "unknown stratify column 'colour'" in res.stderr
    assert _design(cli, sample_db, "c").exit_code == 0
    res = _design(cli, sample_db, "c")
    assert res.exit_code == 2
    assert res.stderr == "error: experiment 'c' already exists; choose another --name\n"
    res = cli("experiment", "analyze", "--db", sample_db, "--name", "nope")
    assert res.exit_code == 2
    assert "experiment 'nope' not found" in res.stderr
    res = _design(cli, sample_db, "d", "--where", "market=MARS")
    assert res.exit_code == 2
    assert "--where matches no item x market: market=MARS" in res.stderr


def test_balance_is_per_currency(cli, sample_db: Path) -> None:
    """Money metrics are compared within a currency: JPY is never averaged with EUR."""
    res = _design(cli, sample_db, "ccy", "--json")
    assert res.exit_code == 0, res.stderr
    bal = pl.DataFrame(json.loads(res.stdout)["balance"])
    units = bal.filter(pl.col("metric") == "units")
    assert units["currency"].unique().to_list() == ["all"]
    money = bal.filter(pl.col("metric") == "current_price")
    assert set(money["currency"]) == {"USD", "GBP", "EUR", "JPY", "CNY"}
    with Store.open(sample_db, read_only=True) as s:
        a = s.query(
            "SELECT a.market, a.cell, a.current_price FROM experiment_assignments a "
            "WHERE experiment = 'ccy'"
        )
    jp = a.filter((pl.col("market") == "JP") & (pl.col("cell") == "control"))
    row = money.filter((pl.col("currency") == "JPY") & (pl.col("price_change_pct") == 0))
    assert row["mean"].item() == pytest.approx(jp["current_price"].mean(), rel=1e-12)
    assert row["n_units"].item() == jp.height
