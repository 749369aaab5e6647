"""The substitutes sample: generated as committed, and the README's section runs as written."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import polars as pl
import pytest

from pricelab.sample import generate_substitutes
from pricelab.sample.substitutes import FILES
from tests.conftest import REPO

COMMITTED = REPO / "data" / "sample"


def test_committed_files_are_the_generator_output(tmp_path):
    fresh = generate_substitutes(tmp_path)
    assert sorted(fresh) == sorted(FILES)
    for name, path in fresh.items():
        assert (COMMITTED / f"{name}.csv").read_bytes() == path.read_bytes(), (
            f"data/sample/{name}.csv differs from generate_substitutes(); "
            "run: python examples/make_sample.py"
        )


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Substitutes:", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("  #", 1)[0].strip()
        if line:
            args = shlex.split(line)
            assert args[0] == "pricelab", line
            out.append(args[1:])
    return out


def test_readme_section_runs_and_its_numbers_hold(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outs = []
    for args in readme_commands():
        r = cli(*args)
        assert r.exit_code == 0, f"pricelab {' '.join(args)}\n{r.stdout}\n{r.stderr}"
        outs.append(r.stdout)
    # estimate: the true matrix recovered (README: MAE 0.13, coverage 98%)
    est = pl.read_csv(tmp_path / "cross.csv")
    truth = pl.read_csv(tmp_path / "sample" / "substitutes_true_cross.csv")
    j = est.join(truth, on=["item_id", "market", "other_item_id"], suffix="_true")
    assert j.height == truth.height == 50
    err = (j["elasticity"] - j["elasticity_true"]).abs().mean()
    cover = ((j["ci_low"] <= j["elasticity_true"]) & (j["ci_high"] >= j["elasticity_true"])).mean()
    assert err == pytest.approx(0.128, abs=0.005) and cover >= 0.95
    # optimize: the single-item plan earns 78.9% of the joint plan, below the baseline
    db = tmp_path / "subs.duckdb"
    r = cli("runs", "list", "--db", db, "--command", "optimize", "--json")
    plan_run = json.loads(r.stdout)[0]["run_id"]
    summary = json.loads(cli("runs", "show", plan_run, "--db", db, "--json").stdout)["summary"]
    assert summary["single_item_share_of_joint"] == pytest.approx(0.789, abs=0.001)
    assert summary["objective"] == pytest.approx(2_273_473, rel=1e-6)
    assert summary["single_item_objective"] < summary["baseline_objective"]
    assert summary["gap"] < 0.005
    plan = pl.read_csv(tmp_path / "plan.csv")
    assert "cannibalised_quantity" in plan.columns
    # simulate: the black tote's cut costs its siblings units and the category profit
    w = pl.read_csv(tmp_path / "whatif.csv").filter(pl.col("market") == "DE")
    tote = w.filter(pl.col("item_id").str.starts_with("TOTE"))
    sib = tote.filter(pl.col("item_id") != "TOTE-BLK")
    assert (sib["cannibalised_quantity"] < 0).all()
    assert sib["cannibalised_quantity"].sum() == pytest.approx(-73.5, abs=0.05)
    delta = (tote["scenario_profit"] - tote["baseline_profit"]).sum()
    assert delta == pytest.approx(-13_159, abs=1)
    assert Path(tmp_path / "subs.html").read_text().count("cross-price heat map") >= 2
