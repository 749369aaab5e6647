"""Simulate with a cross estimate run: a price cut shows the siblings' cannibalised units."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from tests.test_elasticity_cross import synthetic


def _db(tmp_path, cli):
    sales, items = synthetic(markets=2, weeks=60)
    sales.with_columns(unit_cost=pl.lit(55.0)).write_csv(tmp_path / "sales.csv")
    items.write_csv(tmp_path / "items.csv")
    db = tmp_path / "x.duckdb"
    r = cli(
        "ingest", "--db", db, "--sales", tmp_path / "sales.csv", "--items", tmp_path / "items.csv"
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    return db


def test_cut_one_price_shows_siblings_cannibalised_units(tmp_path, cli):
    db = _db(tmp_path, cli)
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "baseline_weeks: 8\nhorizon_weeks: 4\nscenarios:\n"
        "  - name: cut-i0\n    changes:\n      - where: {item_id: I0}\n"
        "        price_change_pct: -20\n"
    )
    assert cli("estimate", "--db", db, "--model", "poisson").exit_code == 0
    out0 = tmp_path / "own.csv"
    r = cli("simulate", "--db", db, "--scenario", scen, "--output", out0, "--draws", 0)
    assert r.exit_code == 0, r.stdout + r.stderr
    own = pl.read_csv(out0)
    assert (own["cannibalised_quantity"] == 0).all()
    assert cli("estimate", "--db", db, "--model", "cross").exit_code == 0
    run = json.loads(cli("runs", "list", "--db", db, "--json").stdout)[0]["run_id"]
    out = tmp_path / "cross.csv"
    r = cli("simulate", "--db", db, "--scenario", scen, "--output", out, "--draws", 0)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "cannibalised" in r.stdout
    t = pl.read_csv(out).sort("item_id", "market")
    sib = t.filter(pl.col("item_id") != "I0")
    # siblings' prices did not move, yet they lose units to the cut: exactly the cross effect
    assert (sib["scenario_price"] == sib["baseline_price"]).all()
    assert (sib["cannibalised_quantity"] < 0).all()
    from pricelab.store import Store

    with Store.open(db, read_only=True) as store:
        c = store.read_result("cross_elasticities", run)
    for row in sib.iter_rows(named=True):
        e = c.filter(
            (pl.col("item_id") == row["item_id"])
            & (pl.col("market") == row["market"])
            & (pl.col("other_item_id") == "I0")
        )["elasticity"][0]
        want = row["baseline_quantity"] * (0.8**e - 1)
        assert np.isclose(row["cannibalised_quantity"], want, rtol=1e-9)
        assert np.isclose(row["scenario_quantity"], row["baseline_quantity"] * 0.8**e, rtol=1e-9)
    # the cut item gains from its own price and keeps its siblings' prices: no cross part
    assert (t.filter(pl.col("item_id") == "I0")["cannibalised_quantity"].abs() < 1e-9).all()


def test_report_shows_the_cross_heat_map(tmp_path, cli):
    db = _db(tmp_path, cli)
    assert cli("estimate", "--db", db, "--model", "cross").exit_code == 0
    out = tmp_path / "r.html"
    r = cli("report", "--db", db, "--output", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    html = out.read_text()
    assert "Cross-price elasticities" in html
    assert html.count('alt="cross-price heat map bags (market M0)"') == 1
    assert "significant substitutes" in html
