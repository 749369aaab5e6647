"""``pipeline run`` writes the production plan (``optimize.output``) and its HTML report
(``report.output``) every run, to a path or a URL; the report is the production plan's even
after an analyst's ad-hoc optimize run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pricelab import api
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.errors import ConfigError
from pricelab.pipeline import load_pipeline_config


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    sales, items, _ = simulate_panel(n_items=8, weeks=60, seed=5, base_units=8)
    (tmp_path / "in").mkdir()
    sales.write_csv(tmp_path / "in" / "sales.csv")
    items.write_csv(tmp_path / "in" / "items.csv")
    (tmp_path / "c.yaml").write_text("bounds: {max_increase_pct: 10, max_decrease_pct: 10}\n")
    cfg = {
        "inputs": {"folder": str(tmp_path / "in")},
        "estimate": {"model": "poisson"},
        "optimize": {"constraints": str(tmp_path / "c.yaml"), "output": str(tmp_path / "p.csv")},
        "report": {"output": str(tmp_path / "out" / "report.html")},
        "monitor": {"as_of": "data"},
    }
    (tmp_path / "out").mkdir()
    return tmp_path, cfg


def _optimize(res: Any) -> Any:
    return next(s for s in res.steps if s.step == "optimize")


def test_report_follows_the_production_plan(setup: tuple[Path, dict[str, Any]]) -> None:
    tmp, cfg = setup
    db = tmp / "p.duckdb"
    first = api.pipeline(db, config=cfg)
    assert first.exit_code == 0, first.message
    step = _optimize(first)
    plan_run = step.run_id
    report = tmp / "out" / "report.html"
    assert step.details["report"] == str(report)
    assert step.details["report_runs"]["optimize"] == plan_run
    assert {"plan", "elasticities"} <= set(step.details["report_sections"])
    html = report.read_text()
    assert f"Run <code>{plan_run}</code>" in html
    assert f"report written to {report}" in step.message
    plan = pl.read_csv(tmp / "p.csv")
    assert plan.height == 16 and plan["recommended_price"].is_finite().all()
    # an analyst's ad-hoc plan (other constraints) is newer, but not production's
    (tmp / "adhoc.yaml").write_text("bounds: {max_increase_pct: 2, max_decrease_pct: 2}\n")
    adhoc = api.optimize(db, constraints=tmp / "adhoc.yaml")
    report.unlink()
    again = api.pipeline(db, config=cfg)
    assert again.exit_code == 0, again.message
    step = _optimize(again)
    assert step.status == "skipped" and step.run_id == plan_run
    assert step.details["report_runs"]["optimize"] == plan_run != adhoc.run_id
    html = report.read_text()
    assert f"Run <code>{plan_run}</code>" in html and adhoc.run_id not in html


def test_report_to_a_url(setup: tuple[Path, dict[str, Any]]) -> None:
    fsspec = pytest.importorskip("fsspec")
    tmp, cfg = setup
    cfg["report"]["output"] = "memory://exports/report.html"
    res = api.pipeline(tmp / "p.duckdb", config=cfg)
    assert res.exit_code == 0, res.message
    with fsspec.open("memory://exports/report.html", "rt") as f:
        html = f.read()
    assert f"Run <code>{_optimize(res).run_id}</code>" in html


def test_report_output_must_be_html(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("monitor: {as_of: data}\nreport:\n  output: out/report.pdf\n")
    with pytest.raises(ConfigError, match=r"line 3: report.output: the report is HTML"):
        load_pipeline_config(path)
