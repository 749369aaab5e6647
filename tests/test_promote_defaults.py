"""The registry drives the estimates optimize, simulate and report use by default."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pricelab import api
from pricelab.elasticity.synthetic import simulate_panel
from tests.conftest import CliResult

SCENARIO = {
    "baseline_weeks": 4,
    "horizon_weeks": 4,
    "scenarios": [
        {"name": "us-plus-5", "changes": [{"where": {"market": "US"}, "price_change_pct": 5}]}
    ],
}


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, str, str]:
    """A database with two estimate runs: ``a`` (poisson, older) and ``b`` (ols, latest)."""
    sales, items, _ = simulate_panel(n_items=12, weeks=40, seed=5, base_units=10)
    sales.write_csv(tmp_path / "sales.csv")
    items.write_csv(tmp_path / "items.csv")
    db = tmp_path / "d.duckdb"
    api.ingest(db, sales=tmp_path / "sales.csv", items=tmp_path / "items.csv")
    (tmp_path / "constraints.yaml").write_text(
        "bounds: {max_increase_pct: 10, max_decrease_pct: 10}\n"
    )
    a = api.estimate(db, model="poisson").run_id
    b = api.estimate(db, model="ols").run_id
    return db, a, b


def _optimize(cli: Callable[..., CliResult], db: Path, *extra: object) -> str:
    res = cli(
        "optimize", "--db", db, "--json", "--constraints", db.parent / "constraints.yaml", *extra
    )
    assert res.exit_code == 0, res.stderr
    return str(json.loads(res.stdout)["estimates_run"])


def test_without_registry_latest_is_used(
    cli: Callable[..., CliResult], two_runs: tuple[Path, str, str]
) -> None:
    db, _, b = two_runs
    assert _optimize(cli, db) == b


def test_production_run_is_the_default(
    cli: Callable[..., CliResult], two_runs: tuple[Path, str, str], tmp_path: Path
) -> None:
    db, a, b = two_runs
    assert cli("promote", a, "--db", db, "--force", "--reason", "pinned").exit_code == 0
    # optimize: production, not the newer run; --estimates still overrides
    assert _optimize(cli, db) == a
    assert _optimize(cli, db, "--estimates", b) == b
    # simulate
    assert api.simulate(db, SCENARIO, draws=50).estimates_run == a
    assert api.simulate(db, SCENARIO, draws=50, estimates=b).estimates_run == b
    # report: built around the latest plan, which used the run given last (b) ...
    assert api.report(db, output=tmp_path / "r1.html").runs["estimate"] == b
    # ... and after a default optimize, around production
    assert _optimize(cli, db) == a
    assert api.report(db, output=tmp_path / "r2.html").runs["estimate"] == a


def test_newest_promotion_wins_and_rollback(
    cli: Callable[..., CliResult], two_runs: tuple[Path, str, str]
) -> None:
    db, a, b = two_runs
    assert cli("promote", a, "--db", db, "--force", "--reason", "first").exit_code == 0
    assert cli("promote", b, "--db", db, "--force", "--reason", "second").exit_code == 0
    assert _optimize(cli, db) == b
    assert cli("promote", a, "--db", db, "--force", "--reason", "rollback").exit_code == 0
    assert _optimize(cli, db) == a
    hist = api.registry(db).to_dicts()
    assert [(h["run_id"], h["previous_run_id"], h["reason"]) for h in hist] == [
        (a, b, "rollback"),
        (b, a, "second"),
        (a, None, "first"),
    ]


def test_report_without_plan_uses_production(
    two_runs: tuple[Path, str, str], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    db, a, _ = two_runs
    assert cli("promote", a, "--db", db, "--force", "--reason", "pinned").exit_code == 0
    assert api.report(db, output=tmp_path / "r.html").runs["estimate"] == a
