"""Database mode on the bundled sample, judged against the sample's true demand."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab._resources import sample_dir
from pricelab.markdown.fluid import fluid
from pricelab.markdown.plan import simple_rule_path
from pricelab.store import Store
from tests.conftest import copy_db

FAST = {
    "season_end": "2026-03-30",
    "ladder": [0, 10, 20, 30, 40, 50, 60],
    "min_weeks_between_changes": 2,
    "salvage": {"pct_of_cost": 30},
    "milp_max_pools": 0,
}


@pytest.fixture(scope="module")
def est_db(tmp_path_factory: pytest.TempPathFactory, estimated_template: Path) -> Path:
    return copy_db(estimated_template, tmp_path_factory.mktemp("md") / "sample.duckdb")


def true_demand(prob, first_week: dt.date) -> np.ndarray:
    """(R, T, L) expected units under the sample generator's own demand model."""
    truth = pl.read_csv(sample_dir() / "true_elasticities.csv")
    rows = pl.DataFrame({"item_id": prob.item_id, "market": prob.market}).join(
        truth, on=["item_id", "market"], how="left", maintain_order="left"
    )
    _, t_len, _ = prob.shape
    dates = [first_week + dt.timedelta(weeks=t) for t in range(t_len)]
    th = np.array([2 * math.pi * d.timetuple().tm_yday / 365.25 for d in dates])
    yrs = np.array([(d - dt.date(2024, 1, 1)).days / 365.25 for d in dates])
    col = {c: rows[c].to_numpy()[:, None] for c in rows.columns if c not in ("item_id", "market")}
    log_base = (
        np.log(col["baseline_quantity"])
        + col["season_sin"] * np.sin(th)[None, :]
        + col["season_cos"] * np.cos(th)[None, :]
        + col["trend"] * yrs[None, :]
    )
    price = prob.local_price()  # (R, L)
    e = col["elasticity"][:, :, None]
    ratio = (price / col["ref_price"])[:, None, :]
    return np.exp(log_base)[:, :, None] * ratio**e


def test_sample_plan_beats_keep_full_price_and_simple_rule_on_true_demand(est_db: Path) -> None:
    run = api.markdown_plan(est_db, constraints=FAST)
    plan, prob, sol = run.plan, run.plan.problem, run.plan.solution
    with Store.open(est_db) as store:
        last = store.execute("SELECT max(date) FROM sales")[0][0]
        parents = store.execute("SELECT parents FROM runs WHERE run_id = ?", [run.run_id])[0][0]
        stored = store.read_result("markdown_plans", run.run_id)
    assert run.estimates in parents and stored.height == plan.table.height
    assert prob.shape[1] == 14  # 2025-12-22 + 14 weeks <= 2026-03-30
    d_true = true_demand(prob, last + dt.timedelta(days=7))
    bp = prob.base_price()

    def realised(path: np.ndarray) -> float:
        o = fluid(d_true, path, prob.pool, prob.pool_stock, prob.pool_salvage, bp)
        return float(o.value.sum())

    plan_v = realised(sol.path)
    full_v = realised(np.zeros_like(sol.path))
    rule_v = realised(simple_rule_path(prob))
    print(f"realised: plan {plan_v:,.0f}, keep full {full_v:,.0f}, rule {rule_v:,.0f}")
    assert plan_v > full_v * 1.02
    assert plan_v > rule_v * 1.01
    # every plan: on the ladder, never back up, within stock, with its gap
    t = plan.table
    assert set(t["discount_pct"].unique().to_list()) <= set(FAST["ladder"])
    steps = (
        t.sort("item_id", "market", "week")
        .group_by("item_id", "market")
        .agg(pl.col("discount_pct").diff().min().alias("d"))
    )
    assert (steps["d"].fill_null(0) >= 0).all()
    sold = np.bincount(prob.pool, weights=sol.outcome.sales.sum(1), minlength=len(prob.pool_stock))
    assert (sold <= prob.pool_stock + 1e-6).all()
    assert 0 <= run.to_dict()["gap"] < 0.01


def test_cli_database_mode_json(cli, est_db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "md.yaml"
    cfg.write_text("weeks: 6\nladder: [0, 20, 40]\nmilp_max_pools: 0\n")
    res = cli("markdown", "--db", est_db, "--constraints", cfg, "--json")
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["weeks"] == 6 and d["run_id"] and d["estimates_run"]
    res = cli("markdown", "--db", est_db, "--constraints", cfg, "--season-end", "2020-01-01")
    assert res.exit_code == 2 and "not after the last week" in res.stderr


def test_sample_markdown_yaml_runs(cli, est_db: Path) -> None:
    """The shipped data/sample/markdown.yaml (README) parses and names a season end."""
    from pricelab.markdown import load_markdown_config

    cfg = load_markdown_config(sample_dir() / "markdown.yaml")
    assert cfg.season_end == dt.date(2026, 3, 30) and cfg.max_discount_for("jewellery") == 30


def test_summary_table_fits_80_columns(est_db: Path) -> None:
    """The over-stocked table's money columns are not cut off in an 80-column terminal."""
    from typer.testing import CliRunner

    from pricelab.cli.app import app

    args = ["markdown", "--db", str(est_db), "--constraints", str(sample_dir() / "markdown.yaml")]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "80"}, terminal_width=80)
    assert res.exit_code == 0, res.output
    table_lines = [ln for ln in res.stdout.splitlines() if ln[:1] in "┏┃┡│└"]
    assert table_lines and max(len(ln) for ln in table_lines) <= 80
    assert "…" not in res.stdout
    header = next(ln for ln in table_lines if ln.startswith("┃"))
    for col in ("item", "market", "stock", "sell %", "md week", "value", "vs full", "vs rule"):
        assert col in header
    row = next(ln for ln in table_lines if ln.startswith("│"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert all(c.replace(",", "").lstrip("-").isdigit() for c in cells[2:])  # whole numbers
