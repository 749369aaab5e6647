"""``examples/oj_example.py``: Dominick's OJ through the real CLI (skipped without the data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dominicks_oj"
pytestmark = [pytest.mark.realdata, pytest.mark.slow]  # ~30 s: four CLI subprocesses

# README.md of the data folder, "Extra sanity estimates": per brand, log(units) ~ log(price)
# + feat + deal | store + week FE (feat as a fraction, plus deal; ours: promo = feat > 0)
README_PANEL = {
    "Tropicana Premium 64 oz": -1.93,
    "Tropicana Premium 96 oz": -1.65,
    "Florida's Natural 64 oz": -1.95,
    "Tropicana 64 oz": -2.01,
    "Minute Maid 64 oz": -1.76,
    "Minute Maid 96 oz": -2.08,
    "Citrus Hill 64 oz": -2.77,
    "Tree Fresh 64 oz": -1.78,
    "Florida Gold 64 oz": -3.04,
    "Dominicks 64 oz": -2.10,
    "Dominicks 128 oz": -0.25,
}
TADDY = {
    "dominicks": "Dominicks 64 oz",
    "minute.maid": "Minute Maid 64 oz",
    "tropicana": "Tropicana Premium 64 oz",
}


@pytest.fixture(scope="module")
def result():
    if not (DATA / "oj_long.csv").exists():
        pytest.skip(f"{DATA} not available")
    spec = importlib.util.spec_from_file_location("oj_example", ROOT / "examples" / "oj_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run(DATA)


def test_contract_files(tmp_path):
    if not (DATA / "oj_long.csv").exists():
        pytest.skip(f"{DATA} not available")
    spec = importlib.util.spec_from_file_location(
        "oj_to_contract", ROOT / "examples" / "oj_to_contract.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = mod.contract_files(DATA, tmp_path)
    import polars as pl

    sales = pl.read_csv(files["sales"], try_parse_dates=True)
    assert sales.height == 106_139 and sales["date"].dt.weekday().unique().to_list() == [1]
    assert sales.select("item_id", "market", "date").is_duplicated().sum() == 0
    raw = pl.read_csv(DATA / "oj_long.csv")
    assert sales["quantity"].sum() == raw["units"].sum()
    assert sales["promo"].sum() == (raw["feat"] > 0).sum()


def test_every_group_estimated(result):
    runs = result["runs"]
    assert runs["ols"]["groups"] == runs["ols"]["estimated"] == 913
    assert runs["poisson"]["groups"] == runs["poisson"]["estimated"] == 913
    assert runs["panel"]["groups"] == runs["panel"]["estimated"] == 11
    assert all(r["run_id"] for r in runs.values())


def test_panel_common_slope_matches_the_data_readme(result):
    got = {r["item_id"]: r for r in result["brands"]}
    assert set(got) == set(README_PANEL)
    for brand, want in README_PANEL.items():
        assert got[brand]["panel"] == pytest.approx(want, abs=0.06), brand
        assert 0.05 < got[brand]["panel_se"] < 0.6


def test_taddy_brands_within_published_range(result):
    ref = json.loads((DATA / "reference.json").read_text())["checks"]
    published = [c["published"] for c in ref if "published" in c]
    published += [v for c in ref if "elasticity" in c for v in c["elasticity"].values()]
    lo, hi = min(published), max(published)
    got = {r["item_id"]: r for r in result["brands"]}
    for name in TADDY.values():
        assert lo <= got[name]["panel"] <= hi
        # per-store fits: the median store is elastic too, within a sensible band
        assert -4.0 < got[name]["ols_median"] < -1.0
        assert -4.0 < got[name]["poisson_median"] < -1.0
