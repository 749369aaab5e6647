"""``pricelab monitor``: each check against a known answer, exit codes, JSON, config."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pricelab.monitor import robust_z
from tests.test_report_fixtures import estimate_frame, plan_frame, store_run, write_sales

KEYS = [(f"IT{i:04d}", m) for i in range(1, 6) for m in ("US", "DE")]
LAST_WEEK = dt.date(2024, 3, 4)  # loaded_db: 10 weeks from 2024-01-01


def _monitor(cli, db: Path, *args: object) -> tuple[int, dict, str]:
    res = cli("monitor", "--db", db, "--json", *args)
    return res.exit_code, json.loads(res.stdout), res.stderr


def _check(doc: dict, name: str) -> dict:
    return next(c for c in doc["checks"] if c["name"] == name)


def test_freshness_alerts_exactly_after_14_days(loaded_db: Path, cli) -> None:
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", LAST_WEEK + dt.timedelta(days=14))
    assert code == 0 and doc["status"] == "ok"
    fresh = _check(doc, "freshness")
    assert fresh["status"] == "ok" and fresh["value"] == 14
    code, doc, err = _monitor(cli, loaded_db, "--as-of", LAST_WEEK + dt.timedelta(days=15))
    assert code == 1 and doc["alerts"] == ["freshness"]
    assert _check(doc, "freshness")["value"] == 15
    assert "monitoring alert: freshness (latest sales week 2024-03-04 is 15 days" in err


def test_checks_without_inputs_are_skipped_not_alerts(loaded_db: Path, cli) -> None:
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", LAST_WEEK)
    assert code == 0
    status = {c["name"]: c["status"] for c in doc["checks"]}
    assert status == {
        "freshness": "ok",
        "volume": "ok",
        "drift": "skipped",
        "fit": "skipped",
        "plan": "skipped",
    }
    table = cli("monitor", "--db", loaded_db, "--as-of", LAST_WEEK)
    assert table.exit_code == 0 and "skipped" in table.stdout and "no optimize run" in table.stdout


def _volume_db(tmp_path: Path, cli, us_last: int, weeks: int = 30) -> Path:
    rng = np.random.default_rng(7)
    us = [int(v) for v in rng.integers(90, 111, weeks - 1)] + [us_last]
    de = [int(v) for v in rng.integers(40, 61, weeks)]
    sales = write_sales(tmp_path / "vol.csv", {("A", "US"): us, ("A", "DE"): de})
    db = tmp_path / "vol.duckdb"
    assert cli("ingest", "--db", db, "--sales", sales).exit_code == 0
    return db


@pytest.mark.parametrize("us_last, alert", [(300, True), (103, False), (0, True)])
def test_volume_robust_z_against_scipy(tmp_path: Path, cli, us_last: int, alert: bool) -> None:
    db = _volume_db(tmp_path, cli, us_last)
    last = dt.date(2024, 1, 1) + dt.timedelta(weeks=29)
    code, doc, _ = _monitor(cli, db, "--as-of", last)
    vol = _check(doc, "volume")
    markets = {m["market"]: m for m in vol["details"]["markets"]}
    # reference: robust z of log(1 + units) over the 26 previous weeks, scipy's normal-scaled MAD
    rng = np.random.default_rng(7)
    us = np.log1p(np.r_[rng.integers(90, 111, 29), us_last].astype(float))
    hist = us[-27:-1]
    z = (us[-1] - np.median(hist)) / stats.median_abs_deviation(hist, scale="normal")
    assert markets["US"]["method"] == "level" and markets["US"]["weeks"] == 26
    assert markets["US"]["z"] == pytest.approx(z, abs=1e-4)
    assert markets["US"]["status"] == ("alert" if alert else "ok")
    assert markets["DE"]["status"] == "ok"
    assert (code == 1) == alert and (vol["status"] == "alert") == alert


def test_volume_year_over_year_absorbs_a_repeating_peak(tmp_path: Path, cli) -> None:
    rng = np.random.default_rng(3)
    weeks = 80
    base = rng.integers(95, 106, weeks).astype(int)
    peak = [w for w in range(weeks) if w % 52 == 79 % 52]  # the last week's week-of-year
    units = [int(v * 3) if w in peak else int(v) for w, v in enumerate(base)]
    sales = write_sales(tmp_path / "s.csv", {("A", "US"): units})
    db = tmp_path / "s.duckdb"
    assert cli("ingest", "--db", db, "--sales", sales).exit_code == 0
    last = dt.date(2024, 1, 1) + dt.timedelta(weeks=weeks - 1)
    code, doc, _ = _monitor(cli, db, "--as-of", last)
    us = _check(doc, "volume")["details"]["markets"][0]
    assert us["method"] == "yoy" and us["status"] == "ok" and code == 0
    cfg = tmp_path / "m.yaml"
    cfg.write_text("monitor:\n  volume:\n    seasonal: false\n")
    code, doc, _ = _monitor(cli, db, "--as-of", last, "--config", cfg)
    us = _check(doc, "volume")["details"]["markets"][0]
    assert us["method"] == "level" and us["status"] == "alert" and code == 1


@pytest.mark.parametrize("n_shifted, alert", [(1, False), (2, True)])
def test_drift_share_of_items_beyond_intervals(
    loaded_db: Path, cli, n_shifted: int, alert: bool
) -> None:
    store_run(loaded_db, "estimate", "elasticities", estimate_frame(KEYS))
    shift = dict.fromkeys(KEYS[:n_shifted], -1.0)
    new = store_run(loaded_db, "estimate", "elasticities", estimate_frame(KEYS, shift=shift))
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", LAST_WEEK)
    drift = _check(doc, "drift")
    assert drift["value"] == pytest.approx(n_shifted / 10)  # limit 0.10, alert when above
    assert drift["details"]["latest_run"] == new and drift["details"]["moved"] == n_shifted
    assert drift["status"] == ("alert" if alert else "ok") and (code == 1) == alert


def test_fit_quality_counts_flagged_and_failed_groups(loaded_db: Path, cli) -> None:
    flags = {KEYS[0]: "few_obs", KEYS[1]: "failed,no_sales", KEYS[2]: "shrunk,inelastic"}
    est = estimate_frame(KEYS, flags=flags)
    est = est.with_columns(est["elasticity"].scatter(3, float("nan")))  # a failed fit
    store_run(loaded_db, "estimate", "elasticities", est)
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", LAST_WEEK)
    fit = _check(doc, "fit")
    assert fit["value"] == pytest.approx(0.3) and fit["status"] == "alert" and code == 1
    assert fit["details"]["by_flag"] == {"few_obs": 1, "failed": 2, "no_sales": 1}
    cfg = loaded_db.parent / "fit.yaml"
    cfg.write_text("monitor:\n  fit:\n    max_share: 0.3\n")
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", LAST_WEEK, "--config", cfg)
    assert _check(doc, "fit")["status"] == "ok" and code == 0


def test_plan_staleness(loaded_db: Path, cli) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    est = estimate_frame(KEYS)
    e1 = store_run(loaded_db, "estimate", "elasticities", est, started_at=now - dt.timedelta(1))
    store_run(loaded_db, "optimize", "plans", plan_frame(est), parents=[e1])
    today = now.date()
    off = loaded_db.parent / "off.yaml"
    off.write_text("monitor:\n  freshness: {enabled: false}\n  volume: {enabled: false}\n")
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", today, "--config", off)
    assert _check(doc, "plan")["status"] == "ok" and code == 0
    assert _check(doc, "freshness")["message"] == "disabled in config"
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", today + dt.timedelta(15), "--config", off)
    plan = _check(doc, "plan")
    assert plan["status"] == "alert" and plan["value"] == 15 and "15 days old" in plan["message"]
    e2 = store_run(loaded_db, "estimate", "elasticities", est)
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", today, "--config", off)
    plan = _check(doc, "plan")
    assert plan["status"] == "alert" and code == 1
    assert f"estimate run {e2} is newer than plan" in plan["message"]


def test_config_errors_and_bad_dates_are_exit_2(loaded_db: Path, cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("monitor:\n  freshness:\n    max_age: 3\n")
    res = cli("monitor", "--db", loaded_db, "--config", bad)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {bad}, line 3: monitor.freshness.max_age: unknown key "
        "'max_age'; did you mean 'max_age_days'?\n"
    )
    bad.write_text("monitor:\n  drift:\n    max_share: 2\n")
    res = cli("monitor", "--db", loaded_db, "--config", bad)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {bad}, line 3: monitor.drift.max_share: expected a share between 0 and 1, got 2\n"
    )
    res = cli("monitor", "--db", loaded_db, "--as-of", "2024-13-01")
    assert res.exit_code == 2 and "not an ISO date" in res.stderr
    res = cli("monitor", "--db", loaded_db, "--config", tmp_path / "missing.yaml")
    assert res.exit_code == 2 and "config file not found" in res.stderr


def test_config_section_overrides_freshness_limit(loaded_db: Path, cli, tmp_path: Path) -> None:
    cfg = tmp_path / "pricelab.yaml"
    cfg.write_text("other_section: {x: 1}\nmonitor:\n  freshness:\n    max_age_days: 30\n")
    code, doc, _ = _monitor(
        cli, loaded_db, "--as-of", LAST_WEEK + dt.timedelta(days=30), "--config", cfg
    )
    assert code == 0 and _check(doc, "freshness")["threshold"] == 30


def test_robust_z_degenerate_history() -> None:
    flat = np.full(10, 5.0)
    assert robust_z(5.0, flat) == 0.0
    assert robust_z(6.0, flat) == 1e6
    # MAD zero but not constant: scale is sqrt(pi/2) * mean absolute deviation (0.3)
    h = np.array([1.0] * 8 + [2.0, 3.0])
    assert robust_z(2.0, h) == pytest.approx(1.0 / (math.sqrt(math.pi / 2) * 0.3))


def test_plan_created_after_as_of_is_not_judged(loaded_db: Path, cli) -> None:
    """A plan made after --as-of did not exist then: skipped, not 'created N days after'."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    est = estimate_frame(KEYS)
    e1 = store_run(loaded_db, "estimate", "elasticities", est, started_at=now - dt.timedelta(1))
    p = store_run(loaded_db, "optimize", "plans", plan_frame(est), parents=[e1])
    as_of = now.date() - dt.timedelta(338)
    code, doc, _ = _monitor(cli, loaded_db, "--as-of", as_of)
    plan = _check(doc, "plan")
    assert plan["status"] == "skipped" and plan["value"] is None
    assert plan["message"] == (
        f"plan {p} was created on {now.date()}, after the as-of date {as_of}: no plan existed "
        "then to judge (run without --as-of to judge it today)"
    )


def test_monitor_and_runs_show_write_output(loaded_db: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "checks.csv"
    res = cli("monitor", "--db", loaded_db, "--as-of", LAST_WEEK, "--output", out)
    assert res.exit_code == 0, res.stderr
    checks = pl.read_csv(out)
    assert checks.columns == ["as_of", "check", "status", "value", "threshold", "message"]
    assert checks["check"].to_list() == ["freshness", "volume", "drift", "fit", "plan"]
    runs = json.loads(cli("runs", "list", "--db", loaded_db, "--json").stdout)
    assert runs[0]["command"] == "monitor"  # the CLI records the monitor run (newest)
    run_id = next(r["run_id"] for r in runs if r["command"] == "ingest")
    shown = tmp_path / "run.json"
    res = cli("runs", "show", run_id, "--db", loaded_db, "--output", shown)
    assert res.exit_code == 0, res.stderr
    (row,) = json.loads(shown.read_text())
    assert row["run_id"] == run_id and json.loads(row["parameters"])["files"]
