"""The report's season clearance section: present with a markdown run, numbers and plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl

from pricelab.report.markdown import calendar, load_markdown, rundown
from pricelab.store import Store
from tests.test_markdown_cli import DEMAND, STOCK, YAML
from tests.test_report_html import png_size


def test_report_has_markdown_section_matching_the_plan(loaded_db: Path, tmp_path: Path, cli):
    files = {}
    for name, text in (("demand.csv", DEMAND), ("stock.csv", STOCK), ("md.yaml", YAML)):
        files[name] = tmp_path / name
        files[name].write_text(text.strip() + "\n")
    res = cli(
        "markdown",
        "--demand",
        files["demand.csv"],
        "--stock",
        files["stock.csv"],
        "--constraints",
        files["md.yaml"],
        "--db",
        loaded_db,
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    planned = json.loads(res.stdout)
    out = tmp_path / "r.html"
    res = cli("report", "--db", loaded_db, "-o", out, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["sections"]["markdown"] is True
    html = out.read_text(encoding="utf-8")
    section = html[html.index('<section id="markdown"') :]
    imgs = re.findall(r'src="(data:image/png;base64,[^"]+)"', section)
    assert len(imgs) == 1
    w, h = png_size(imgs[0])
    assert 600 <= w <= 1400 and 250 <= h <= 1200

    def card(value: str, key: str) -> str:
        return f'<div class="v">{value}</div><div class="k">{key}</div>'

    assert card(f"{planned['sell_through_pct']:.1f}%", "planned sell-through") in section
    vs_full = planned["value"] - planned["value_keep_full_price"]
    assert card(f"{vs_full:+,.0f}", "vs keep full price") in section
    assert card(f"{100 * planned['gap']:.3f}%", "proven gap") in section
    # the plotted numbers against a hand computation from the stored plan
    with Store.open(loaded_db) as store:
        md = load_markdown(store)
        plan = store.read_result("markdown_plans", planned["run_id"])
    assert md is not None
    down = rundown(md).sort("category", "week")
    cat = {"A": "shoes", "B": "bags"}
    plan = plan.with_columns(pl.col("item_id").replace_strict(cat).alias("category"))
    for c, stock in (("shoes", 60.0), ("bags", 25.0)):
        sold = (
            plan.filter(pl.col("category") == c)
            .group_by("week")
            .agg(pl.col("expected_units").sum())
        )
        want = 100 * (1 - np.cumsum(sold.sort("week")["expected_units"].to_numpy()) / stock)
        got = down.filter(pl.col("category") == c)["stock_left_pct"].to_numpy()
        np.testing.assert_allclose(got, np.clip(want, 0, 100), atol=1e-9)
    cal = calendar(md)
    shoes = plan.filter(pl.col("category") == "shoes")
    for wk in range(1, 5):
        want = shoes.filter(pl.col("week") == wk)["discount_pct"].mean()
        assert cal.filter(pl.col("category") == "shoes")[str(wk)][0] == want


def test_no_markdown_section_without_a_markdown_run(loaded_db: Path, tmp_path: Path, cli):
    res = cli("report", "--db", loaded_db, "-o", tmp_path / "r.html", "--json")
    assert res.exit_code == 0, res.stderr
    assert "markdown" not in json.loads(res.stdout)["sections"]
