"""``pricelab runs diff``: parameters, input fingerprints and moved elasticities."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pricelab.store.lineage import input_changes, interval_shifts, parameter_changes
from tests.conftest import write_csv
from tests.test_report_fixtures import Z95, estimate_frame, store_run, truth

KEYS = [(f"IT{i:04d}", m) for i in range(1, 6) for m in ("US", "DE")]


def test_shifted_items_are_exactly_the_moved_ones(loaded_db: Path, cli) -> None:
    # se 0.2: intervals are +-0.392 wide each side; a shift of 0.8 clears both, 0.5 does not.
    shift = {KEYS[1]: 0.8, KEYS[4]: -1.0, KEYS[7]: 0.5}
    a = store_run(
        loaded_db,
        "estimate",
        "elasticities",
        estimate_frame(KEYS),
        parameters={"model": "poisson", "alpha": 0.05},
    )
    b = store_run(
        loaded_db,
        "estimate",
        "elasticities",
        estimate_frame(KEYS, shift=shift),
        parameters={"model": "hierarchical", "alpha": 0.05},
    )
    res = cli("runs", "diff", a, b, "--db", loaded_db, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["same_inputs"] is True and doc["inputs"] == []
    assert doc["parameters"] == [{"parameter": "model", "a": "poisson", "b": "hierarchical"}]
    el = doc["elasticity"]
    assert el["compared"] == 10 and el["moved"] == 2
    moved = {(r["item_id"], r["market"]): r for r in el["items"]}
    assert set(moved) == {KEYS[1], KEYS[4]}
    assert moved[KEYS[1]]["direction"] == "up" and moved[KEYS[4]]["direction"] == "down"
    e1 = truth(10)["elasticity"][1]
    assert abs(moved[KEYS[1]]["elasticity_a"] - e1) < 1e-12
    assert abs(moved[KEYS[1]]["shift"] - 0.8) < 1e-12
    text = cli("runs", "diff", a, b, "--db", loaded_db)
    assert text.exit_code == 0
    assert "2 of 10 items moved beyond their intervals" in text.stdout


def test_touching_intervals_still_overlap() -> None:
    a = estimate_frame(KEYS[:2])
    gap = 2 * Z95 * 0.2
    b = a.with_columns(pl.col("elasticity", "ci_low", "ci_high") + pl.Series([gap, gap + 1e-6]))
    moved, n = interval_shifts(a, b)
    assert n == 2 and moved["item_id"].to_list() == [KEYS[1][0]]


def test_rows_without_intervals_are_not_compared() -> None:
    a = estimate_frame(KEYS[:3])
    b = a.with_columns(pl.Series("ci_low", [float("nan"), *a["ci_low"].to_list()[1:]]))
    moved, n = interval_shifts(a, b)
    assert n == 2 and moved.height == 0


def test_input_fingerprint_changes_are_listed(loaded_db: Path, tmp_path: Path, cli) -> None:
    first = cli("runs", "list", "--db", loaded_db, "--json")
    run_a = json.loads(first.stdout)[0]["run_id"]
    extra = write_csv(
        tmp_path / "more.csv",
        """
        item_id,market,date,price,quantity
        IT-1,US,2024-03-11,120,3""",
    )
    assert cli("ingest", "--db", loaded_db, "--sales", extra).exit_code == 0
    run_b = json.loads(cli("runs", "list", "--db", loaded_db, "--json").stdout)[0]["run_id"]
    doc = json.loads(cli("runs", "diff", run_a, run_b, "--db", loaded_db, "--json").stdout)
    changed = {(r["table"], r["field"]): (r["a"], r["b"]) for r in doc["inputs"]}
    assert changed[("sales", "rows")] == (40, 41)
    assert changed[("sales", "date_max")] == ("2024-03-04", "2024-03-11")
    assert ("sales", "hash") in changed and ("sales", "date_min") not in changed
    assert not any(t != "sales" for t, _ in changed)  # items, costs, ... unchanged
    assert doc["same_inputs"] is False and "elasticity" not in doc


def test_same_data_same_model_gives_identical_estimates(
    loaded_db: Path, tmp_path: Path, cli
) -> None:
    outs = []
    for k in range(2):
        out = tmp_path / f"e{k}.csv"
        res = cli("estimate", "--db", loaded_db, "--model", "poisson", "--output", out)
        assert res.exit_code == 0, res.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    runs = json.loads(
        cli("runs", "list", "--db", loaded_db, "--command", "estimate", "--json").stdout
    )
    doc = json.loads(
        cli(
            "runs", "diff", runs[1]["run_id"], runs[0]["run_id"], "--db", loaded_db, "--json"
        ).stdout
    )
    assert doc["parameters"] == [] and doc["inputs"] == []
    assert doc["a"]["input_fingerprint"] == doc["b"]["input_fingerprint"]
    assert doc["elasticity"]["moved"] == 0


def test_unknown_run_is_exit_2(loaded_db: Path, cli) -> None:
    res = cli("runs", "diff", "nope", "nope2", "--db", loaded_db)
    assert res.exit_code == 2
    assert "run 'nope' not found" in res.stderr


def test_parameter_and_input_change_helpers() -> None:
    assert parameter_changes({"a": 1, "n": {"x": 1, "y": [1]}}, {"a": 1, "n": {"x": 2}}) == [
        {"parameter": "n.x", "a": 1, "b": 2},
        {"parameter": "n.y", "a": [1], "b": "<absent>"},
    ]
    fa = {"sales": {"rows": 1, "hash": "a", "date_min": "2024-01-01", "date_max": "2024-01-01"}}
    fb = {
        "sales": {"rows": 1, "hash": "a", "date_min": "2024-01-01", "date_max": "2024-01-01"},
        "items": {"rows": 3, "hash": "b"},
    }
    assert input_changes(fa, fa) == []
    assert input_changes(fa, fb) == [
        {"table": "items", "field": "rows", "a": "<absent>", "b": 3},
        {"table": "items", "field": "hash", "a": "<absent>", "b": "b"},
    ]
