"""Promotion gate: refuses a worse model, accepts a better one, records who/when/why.

Synthetic Poisson sales with known elasticities (``simulate_panel``): a Poisson fit is the
right model, log-linear OLS (zero weeks dropped, retransformed) forecasts worse, and on sales
that grow fast a model fitted only on the first weeks misses the growth (its trend is held at
the end of its own window, never extrapolated).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.registry import GateConfig, compare_runs, flagged_share, production_run
from pricelab.simulate import backtest
from pricelab.store import Store
from tests.conftest import CliResult, snapshot


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("gate")
    sales, items, _ = simulate_panel(n_items=30, weeks=70, seed=3, base_units=8)
    sales.write_csv(d / "sales.csv")
    items.write_csv(d / "items.csv")
    db = d / "base.duckdb"
    api.ingest(db, sales=d / "sales.csv", items=d / "items.csv")
    runs = {
        "poisson": api.estimate(db, model="poisson").run_id,
        "ols": api.estimate(db, model="ols").run_id,
        "early": api.estimate(db, model="poisson", before="2022-06-01").run_id,
        "by_market": api.estimate(db, model="ols", by="market").run_id,
    }
    return db, runs


@pytest.fixture(scope="module")
def trending(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Sales growing ~2.7x a year: production (all weeks) vs a model fitted on 21 weeks."""
    d = tmp_path_factory.mktemp("trend")
    sales, items, _ = simulate_panel(n_items=30, weeks=70, seed=3, base_units=8, trend=1.0)
    sales.write_csv(d / "sales.csv")
    items.write_csv(d / "items.csv")
    db = d / "trend.duckdb"
    api.ingest(db, sales=d / "sales.csv", items=d / "items.csv")
    runs = {
        "poisson": api.estimate(db, model="poisson").run_id,
        "early": api.estimate(db, model="poisson", before="2022-06-01").run_id,
    }
    return db, runs


@pytest.fixture
def tdb(trending: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    copy = tmp_path / "trend.duckdb"
    shutil.copy(trending[0], copy)
    return copy


@pytest.fixture
def db(synthetic: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    copy = tmp_path / "gate.duckdb"
    shutil.copy(synthetic[0], copy)
    return copy


@pytest.fixture
def runs(synthetic: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return synthetic[1]


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRICELAB_USER", raising=False)
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "alice")


def _registry(db: Path) -> list[dict[str, object]]:
    return api.registry(db).to_dicts()


def test_gate_scores_match_library_backtest(db: Path, runs: dict[str, str]) -> None:
    """Same origins, rows and formulas as pricelab.simulate.backtest for a run without --before."""
    with Store.open(db) as store:
        comp = compare_runs(store, runs["poisson"], runs["ols"], GateConfig())
        sales, items = store.table("sales"), store.table("items")
    # 70 weeks from 2022-01-03: the last week starts 2023-05-01; 3 x 4 weeks end there
    assert comp.origins == ["2023-02-13", "2023-03-13", "2023-04-10"]
    ref = backtest(
        sales,
        cutoff=comp.origins[-1],
        cutoffs=3,
        horizon_weeks=4,
        models=["poisson", "ols"],
        items=items,
    ).overall()
    mine = comp.table()
    for role, model in (("candidate", "poisson"), ("production", "ols"), ("naive", "naive")):
        a = mine.filter(pl.col("role") == role).row(0, named=True)
        b = ref.filter(pl.col("model") == model).row(0, named=True)
        for key in ("wape", "bias_pct", "deviance", "coverage_90", "n_rows", "n_fallback"):
            assert a[key] == pytest.approx(b[key], rel=1e-9), (role, key)


def test_first_promotion_must_beat_naive(
    cli: Callable[..., CliResult], db: Path, runs: dict[str, str]
) -> None:
    res = cli("promote", runs["poisson"], "--db", db, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "promoted" and doc["previous_run_id"] is None
    wape = next(c for c in doc["comparison"]["checks"] if c["check"] == "wape")
    assert (
        wape["rule"].startswith("no production run yet") and wape["candidate"] < wape["reference"]
    )
    reg = _registry(db)
    assert [r["run_id"] for r in reg] == [runs["poisson"]]
    assert reg[0]["promoted_by"] == "alice" and reg[0]["forced"] is False
    assert reg[0]["reason"].startswith("passed the gate: WAPE")


def test_refuses_worse_model(cli: Callable[..., CliResult], db: Path, runs: dict[str, str]) -> None:
    assert cli("promote", runs["poisson"], "--db", db).exit_code == 0
    before = snapshot(db)["registry"]
    res = cli("promote", runs["ols"], "--db", db)
    assert res.exit_code == 1
    assert f"gate refused run {runs['ols']} (wape check failed)" in res.stderr
    assert "gate checks" in res.stdout and "FAIL" in res.stdout and "production" in res.stdout
    assert snapshot(db)["registry"].equals(before)
    with Store.open(db, read_only=True) as store:
        assert production_run(store) == runs["poisson"]
        row = store.execute(
            "SELECT status, parents, summary FROM runs WHERE command = 'promote' "
            "ORDER BY started_at DESC LIMIT 1"
        )[0]
    assert row[0] == "refused"
    summary = json.loads(row[2])
    table = {r["role"]: r for r in summary["comparison"]["table"]}
    # OLS on Poisson counts is measurably worse
    assert table["candidate"]["wape"] > 1.02 * table["production"]["wape"]
    assert summary["reason"].startswith("refused: WAPE")


def test_margin_decides_and_a_tie_keeps_production(db: Path, runs: dict[str, str]) -> None:
    """Poisson beats OLS by a measured gap: it passes below that margin, not above; the same
    settings on the same inputs tie and keep production."""
    with Store.open(db) as store:
        comp = compare_runs(store, runs["poisson"], runs["ols"], GateConfig())
        t = {r["role"]: r for r in comp.table().iter_rows(named=True)}
        gap = 100 * (1 - t["candidate"]["wape"] / t["production"]["wape"])
        assert 2 < gap < 10 and not comp.same_settings
        for margin, ok in ((gap - 0.1, True), (gap + 0.1, False)):
            cfg = GateConfig(min_improvement_wape=margin)
            checks = compare_runs(store, runs["poisson"], runs["ols"], cfg).checks
            wape = next(c for c in checks if c["check"] == "wape")
            assert wape["passed"] is ok and "a tie keeps production" in wape["rule"]
    twin = api.estimate(db, model="poisson").run_id  # production's settings, same inputs
    with Store.open(db) as store:
        for margin in (0.0, 1.0):
            cfg = GateConfig(min_improvement_wape=margin)
            tie = compare_runs(store, twin, runs["poisson"], cfg)
            t = {r["role"]: r for r in tie.table().iter_rows(named=True)}
            assert t["candidate"]["wape"] == t["production"]["wape"]  # identical refits
            assert tie.same_settings and tie.same_inputs and not tie.passed


def test_forced_rollback_sticks_until_inputs_change(
    cli: Callable[..., CliResult], db: Path, runs: dict[str, str], tmp_path: Path
) -> None:
    # OLS forced into production (a rollback); the better Poisson run, estimated before that
    # decision on the same inputs, is refused without a backtest
    res = cli("promote", runs["ols"], "--db", db, "--force", "--reason", "rollback: INC-7")
    assert res.exit_code == 0, res.stderr
    res = cli("promote", runs["poisson"], "--db", db, "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["status"] == "refused" and doc["comparison"] is None
    assert doc["rollback"]["passed"] is False and "rollback: INC-7" in doc["rollback"]["rule"]
    assert doc["reason"].startswith("refused: rollback: production run")
    again = cli("promote", runs["poisson"], "--db", db)
    assert "rollback check failed" in again.stderr and "set by hand" in again.stdout
    # a poisson estimate on the same inputs after the rollback is refused too
    same = api.estimate(db, model="poisson").run_id
    assert cli("promote", same, "--db", db).exit_code == 1
    # new inputs (one late-reported unit) and a new candidate that wins the gate
    with Store.open(db, read_only=True) as store:
        sales = store.table("sales")
    sales = sales.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("quantity") + 1)
        .otherwise(pl.col("quantity"))
        .alias("quantity")
    )
    sales.write_csv(tmp_path / "late.csv")
    api.ingest(db, sales=tmp_path / "late.csv", replace=True)
    new = api.estimate(db, model="poisson").run_id
    res = cli("promote", new, "--db", db, "--json")
    assert res.exit_code == 0, res.stdout
    doc = json.loads(res.stdout)
    assert doc["status"] == "promoted" and doc["previous_run_id"] == runs["ols"]
    assert doc["rollback"]["passed"] is True
    assert [r["run_id"] for r in _registry(db)] == [new, runs["ols"]]


def test_early_window_misses_growth_and_is_refused(
    cli: Callable[..., CliResult], tdb: Path, trending: tuple[Path, dict[str, str]]
) -> None:
    runs = trending[1]
    assert cli("promote", runs["poisson"], "--db", tdb).exit_code == 0
    res = cli("promote", runs["early"], "--db", tdb, "--json")
    assert res.exit_code == 1
    table = {r["role"]: r for r in json.loads(res.stdout)["comparison"]["table"]}
    assert table["candidate"]["wape"] > 1.5 * table["production"]["wape"]
    assert table["candidate"]["bias_pct"] < -20  # it under-forecasts the growth
    assert [r["run_id"] for r in _registry(tdb)] == [runs["poisson"]]


def test_force_records_reason_and_needs_one(
    cli: Callable[..., CliResult], tdb: Path, trending: tuple[Path, dict[str, str]]
) -> None:
    db, runs = tdb, trending[1]
    assert cli("promote", runs["poisson"], "--db", db).exit_code == 0
    before = snapshot(db)
    res = cli("promote", runs["early"], "--db", db, "--force")
    assert res.exit_code == 2
    assert "--force needs --reason TEXT" in res.stderr
    assert before.keys() == snapshot(db).keys()  # nothing recorded
    res = cli("promote", runs["early"], "--db", db, "--force", "--reason", "hotfix: INC-42")
    assert res.exit_code == 0, res.stderr
    assert "FORCED" in res.stdout
    reg = _registry(db)[0]
    assert (reg["run_id"], reg["forced"], reg["reason"]) == (runs["early"], True, "hotfix: INC-42")
    with Store.open(db, read_only=True) as store:
        comp = json.loads(
            store.execute("SELECT comparison FROM registry WHERE run_id = ?", [runs["early"]])[0][0]
        )
    assert comp["candidate"] == runs["early"] and not comp["passed"]


def test_grain_cannot_be_forced(
    cli: Callable[..., CliResult], db: Path, runs: dict[str, str]
) -> None:
    res = cli("promote", runs["by_market"], "--db", db)
    assert res.exit_code == 1 and "grain" in res.stderr
    res = cli("promote", runs["by_market"], "--db", db, "--force", "--reason", "try")
    assert res.exit_code == 2
    assert "estimated per market, not per item_id x market" in res.stderr
    assert _registry(db) == []


def test_usage_errors_and_history(
    cli: Callable[..., CliResult], db: Path, runs: dict[str, str]
) -> None:
    res = cli("promote", "nope", "--db", db)
    assert res.exit_code == 2 and "run 'nope' not found" in res.stderr
    with Store.open(db, read_only=True) as store:
        ingest_run = store.execute("SELECT run_id FROM runs WHERE command = 'ingest'")[0][0]
    res = cli("promote", ingest_run, "--db", db)
    assert res.exit_code == 2 and "is a ingest run; only estimate runs" in res.stderr
    assert cli("promote", "--db", db, "--cutoffs", "0", runs["ols"]).exit_code == 2
    assert "no promotion yet" in cli("registry", "--db", db).stdout
    # 'latest' is the newest estimate run: the per-market OLS, which cannot serve optimize
    res = cli("promote", "latest", "--db", db, "--force", "--reason", "r")
    assert res.exit_code == 2 and f"cannot promote run {runs['by_market']}" in res.stderr
    assert cli("promote", runs["poisson"], "--db", db).exit_code == 0
    res = cli("promote", runs["poisson"], "--db", db)
    assert res.exit_code == 0 and "already in production; nothing to do" in res.stdout
    hist = json.loads(cli("promote", "--list", "--db", db, "--json").stdout)
    assert [(h["run_id"], h["promoted_by"], h["model"]) for h in hist] == [
        (runs["poisson"], "alice", "poisson")
    ]
    assert runs["poisson"] in cli("registry", "--db", db).stdout


def test_flag_rule_boundaries() -> None:
    """Flagged share counts positive / no_price_variation / weak_instrument, not the others."""
    t = pl.DataFrame(
        {
            "flags": [
                "positive",
                "shrunk",
                "",
                None,
                "few_obs,no_price_variation",
                "inelastic",
                "weak_instrument,positive",
                "shrunk,inelastic",
            ]
        }
    )
    assert flagged_share(t) == pytest.approx(3 / 8)
    assert flagged_share(t, ("shrunk",)) == pytest.approx(2 / 8)
    assert flagged_share(t.head(0)) == 0.0
