"""``pricelab simulate`` replaying a stored markdown plan against the sales history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.markdown.fluid import fluid
from pricelab.store import Store
from tests.conftest import copy_db
from tests.test_markdown_db import FAST, true_demand

SIX_WEEKS = {k: v for k, v in FAST.items() if k != "season_end"} | {"weeks": 6}


@pytest.fixture(scope="module")
def season(
    tmp_path_factory: pytest.TempPathFactory, estimated_template: Path
) -> tuple[Path, object, pl.DataFrame]:
    """A sample database with a 6-week markdown plan and its first 4 weeks 'happened':
    sales rows at the planned prices with the units the sample's true demand gives."""
    db = copy_db(estimated_template, tmp_path_factory.mktemp("replay") / "sample.duckdb")
    run = api.markdown_plan(db, constraints=SIX_WEEKS)
    prob, sol = run.plan.problem, run.plan.solution
    with Store.open(db) as store:
        last = store.execute("SELECT max(date) FROM sales")[0][0]
    first = last + dt.timedelta(days=7)
    d_true = true_demand(prob, first)
    o = fluid(d_true, sol.path, prob.pool, prob.pool_stock, prob.pool_salvage, prob.base_price())
    r, t_len = sol.path.shape
    price = np.take_along_axis(prob.local_price(), sol.path.astype(np.intp), axis=1)
    happened = pl.DataFrame(
        {
            "item_id": np.repeat(prob.item_id, t_len),
            "market": np.repeat(prob.market, t_len),
            "week": np.tile(np.arange(1, t_len + 1), r),
            "price": np.round(price, 2).ravel(),
            "quantity": np.round(o.sales).astype(np.int64).ravel(),
            "promo": (sol.path > 0).astype(np.int8).ravel(),
        }
    ).filter(pl.col("week") <= 4)
    happened = happened.with_columns(
        (pl.lit(first) + pl.duration(weeks=pl.col("week") - 1)).cast(pl.Date).alias("date")
    )
    with Store.open(db) as store, store.transaction():
        store.con.register("happened", happened.to_arrow())
        store.execute(
            "INSERT INTO sales (item_id, market, date, price, quantity, promo) "
            "SELECT item_id, market, date, price, quantity, promo FROM happened"
        )
    return db, run, happened


def test_replay_reports_expected_vs_realised(cli, season, tmp_path: Path) -> None:
    db, run, happened = season
    scen = tmp_path / "replay.yaml"
    scen.write_text(f"markdown_run: {run.run_id}\ndescription: first four weeks\n")
    out = tmp_path / "replay.csv"
    res = cli("simulate", "--db", db, "--scenario", scen, "--json", "--output", out)
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["markdown_run"] == run.run_id and d["weeks"] == 6 and d["weeks_observed"] == 4
    plan = run.plan.table.filter(pl.col("week") <= 4)
    want = (
        plan.group_by("market")
        .agg(pl.col("expected_units").sum(), pl.col("expected_revenue").sum())
        .join(
            happened.group_by("market").agg(
                pl.col("quantity").sum().cast(pl.Float64).alias("realised_units"),
                (pl.col("price") * pl.col("quantity")).sum().alias("realised_revenue"),
            ),
            on="market",
        )
        .sort("market")
    )
    got = pl.DataFrame(d["by_market"]).sort("market")
    assert got["market"].to_list() == want["market"].to_list()
    for c in ("expected_units", "expected_revenue", "realised_units", "realised_revenue"):
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-9)
    tot = d["totals"]
    assert tot["realised_units"] == pytest.approx(float(happened["quantity"].sum()))
    # the sample's estimates are close to its truth: realised within 25% of expected
    assert abs(tot["units_diff_pct"]) < 25
    assert "2 of 6 planned week(s) have no sales yet" in " ".join(d["warnings"])
    rows = pl.read_csv(out)
    assert rows.height == run.plan.table.height
    assert rows.filter(pl.col("observed"))["week"].max() == 4
    with Store.open(db) as store:
        cmd, parents = store.execute(
            "SELECT command, parents FROM runs WHERE run_id = ?", [d["run_id"]]
        )[0]
    assert cmd == "markdown_replay" and run.run_id in parents


def test_replay_text_and_bad_files(cli, season, tmp_path: Path) -> None:
    db, run, _ = season
    scen = tmp_path / "r.yaml"
    scen.write_text("markdown_run: latest\n")
    res = cli("simulate", "--db", db, "--scenario", scen)
    assert res.exit_code == 0, res.stderr
    assert f"markdown run {run.run_id} replayed: 4 of 6 planned weeks" in res.stdout
    assert "sell-through by stock pool" in res.stdout
    scen.write_text("markdown_run: latest\nscenarios: []\n")
    res = cli("simulate", "--db", db, "--scenario", scen)
    assert res.exit_code == 2 and "scenarios" in res.stderr
    scen.write_text("markdown_run: nope\n")
    res = cli("simulate", "--db", db, "--scenario", scen)
    assert res.exit_code == 2 and "markdown_run 'nope' not found" in res.stderr
