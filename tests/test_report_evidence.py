"""The report's backtest and experiment sections: real plots from stored runs (the sample
backtested at one origin; an experiment designed on the sample, its test window simulated
with a known elasticity and analysed)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.report import build_report
from pricelab.store import Store
from tests.conftest import copy_db
from tests.test_experiment_cli import _design, _simulate_window


@pytest.fixture(scope="module")
def evidence_db(tmp_path_factory: pytest.TempPathFactory, sample_template: Path) -> Path:
    tmp = tmp_path_factory.mktemp("evidence")
    db = copy_db(sample_template, tmp / "s.duckdb")
    api.backtest(db, cutoff="2025-09-01", horizon_weeks=6, models=("poisson", "ols"), cutoffs=2)
    return db


def _section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def _pngs(part: str) -> list[bytes]:
    return [
        base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", part)
    ]


def test_backtest_section_shows_the_stored_scores(evidence_db: Path) -> None:
    with Store.open(evidence_db, read_only=True) as s:
        rep = build_report(s)
        run = s.query("SELECT run_id FROM runs WHERE command = 'backtest'")["run_id"][0]
        scores = s.read_result("backtests", run)
    assert rep.sections["backtest"] is True and rep.sections["experiments"] is False
    part = _section(rep.html, "backtest")
    (png,) = _pngs(part)
    assert png.startswith(b"\x89PNG") and len(png) > 5000  # a drawn figure, not a stub
    best = scores.filter(pl.col("cutoff") == "all").sort("rank").row(0, named=True)
    assert f"<b>{best['model']}</b>" in part
    assert f"{best['wape']:.3f}" in part  # the table shows the stored numbers
    assert "No experiment analysis" in _section(rep.html, "experiments")


def test_experiment_section_shows_each_cell(cli, evidence_db: Path, tmp_path: Path) -> None:
    assert _design(cli, evidence_db, "spring").exit_code == 0
    window = _simulate_window(evidence_db, "spring", tmp_path / "window.csv")
    assert cli("ingest", "--db", evidence_db, "--sales", window).exit_code == 0
    assert cli("experiment", "analyze", "--db", evidence_db, "--name", "spring").exit_code == 0
    with Store.open(evidence_db, read_only=True) as s:
        rep = build_report(s)
        run = s.query("SELECT run_id FROM runs WHERE command = 'experiment-analyze'")["run_id"][0]
        res = s.read_result("experiment_results", run)
    assert rep.sections["experiments"] is True
    part = _section(rep.html, "experiments")
    (png,) = _pngs(part)
    assert png.startswith(b"\x89PNG") and len(png) > 3000
    for r in res.iter_rows(named=True):
        assert f"{r['effect_pct']:.2f}" in part and str(r["cell"]) in part
    assert "Experiment spring" in part
