"""A month of nightly runs of the shipped ConfigMap's pipeline config on the sample.

The CronJob runs ``pricelab pipeline run --config /config/pipeline.yaml --json`` every night.
Here the ConfigMap's own ``pipeline.yaml`` and ``constraints.yaml`` (deploy/configmap.yaml)
run for 30 nights on a 12-item cut of the bundled sample, a new week of sales arriving every
seventh night, while life happens in between: an analyst's ad-hoc estimate, a candidate the
gate refuses, a manual rollback and an object-storage outage. Each night must exit as a
platform team expects (0, and 75 — retry — on the outage night), production must be what the
registry's decisions say, and every night's production has a plan.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tests.conftest import REPO, CliResult, snapshot

N_ITEMS = 12
HELD_BACK = 4  # weeks of sales that arrive during the month
DROPS = {8: 1, 16: 2, 22: 3, 29: 4}  # night -> weeks available (night 15's drop fails: outage)
OUTAGE = 15


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("month")
    sample = REPO / "data" / "sample"
    sales = pl.read_csv(sample / "sales.csv", try_parse_dates=True)
    keep = sorted(sales["item_id"].unique())[:N_ITEMS]
    sales = sales.filter(pl.col("item_id").is_in(keep))
    incoming = d / "incoming"
    incoming.mkdir()
    for kind in ("items", "costs", "inventory"):
        pl.read_csv(sample / f"{kind}.csv").filter(pl.col("item_id").is_in(keep)).write_parquet(
            incoming / f"{kind}.parquet"
        )
    pl.read_csv(sample / "markets.csv").write_parquet(incoming / "markets.parquet")
    cm = yaml.safe_load((REPO / "deploy" / "configmap.yaml").read_text())["data"]
    (d / "constraints.yaml").write_text(cm["constraints.yaml"])
    last = sales["date"].max()
    assert isinstance(last, dt.date)
    return {
        "dir": d,
        "sales": sales,
        "incoming": incoming,
        "pipeline": yaml.safe_load(cm["pipeline.yaml"]),
        "first_week": last - dt.timedelta(weeks=HELD_BACK),
    }


def _config(m: dict[str, Any], night: int, files: dict[str, str]) -> Path:
    """The ConfigMap's pipeline config with its inputs and paths pointed at this test."""
    cfg = json.loads(json.dumps(m["pipeline"]))
    assert set(cfg["inputs"]["files"]) == set(files)  # the ConfigMap ingests every table
    cfg["inputs"]["files"] = files
    assert cfg["optimize"]["constraints"] == "/config/constraints.yaml"
    cfg["optimize"]["constraints"] = str(m["dir"] / "constraints.yaml")
    assert cfg["monitor"]["as_of"] == "today"  # replayed nights: the night's own date
    cfg["monitor"]["as_of"] = _night(m, night).isoformat()
    path = m["dir"] / f"night{night}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _night(m: dict[str, Any], night: int) -> dt.date:
    return m["first_week"] + dt.timedelta(days=7 + night)  # night 1: a Tuesday


def test_a_month_of_nightly_runs(
    month: dict[str, Any],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = month
    db = m["dir"] / "state.duckdb"
    local = {k: str(m["incoming"] / f"{k}.parquet") for k in m["pipeline"]["inputs"]["files"]}
    weeks = 0
    exits: dict[int, int] = {}
    production: dict[int, str] = {}
    docs: dict[int, dict[str, Any]] = {}
    adhoc = p1 = ""

    def nightly(night: int, files: dict[str, str]) -> dict[str, Any]:
        res = cli("pipeline", "run", "--config", _config(m, night, files), "--db", db, "--json")
        doc = json.loads(res.stdout)
        assert doc["exit_code"] == res.exit_code
        exits[night], docs[night] = res.exit_code, doc
        if doc.get("production_run"):
            production[night] = doc["production_run"]
        return doc

    for night in range(1, 31):
        if night in DROPS:
            weeks = DROPS[night]
        cut = m["first_week"] + dt.timedelta(weeks=weeks)
        m["sales"].filter(pl.col("date") <= cut).write_parquet(m["incoming"] / "sales.parquet")
        if night == 3:  # an analyst's ad-hoc estimate, far from production's model
            res = cli("estimate", "--db", db, "--model", "ols", "--json")
            assert res.exit_code == 0, res.stderr
            adhoc = json.loads(res.stdout)["run_id"]
        if night == 5:  # ... which the analyst tries to promote: the gate refuses it
            res = cli("promote", adhoc, "--db", db, "--json")
            assert res.exit_code == 1 and json.loads(res.stdout)["status"] == "refused"
        if night == 10:  # a manual rollback to the first production run
            res = cli("promote", p1, "--db", db, "--force", "--reason", "rollback: INC-9")
            assert res.exit_code == 0, res.stderr
        if night == OUTAGE:  # the bucket is unreachable tonight
            monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
            for var, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "secret1")):
                monkeypatch.setenv(var, value)
            monkeypatch.setenv("PRICELAB_STORAGE_RETRIES", "1")
            monkeypatch.setenv("PRICELAB_STORAGE_BACKOFF", "0.05")
            before = snapshot(db)
            outage = {k: f"s3://pricing/incoming/{k}.parquet" for k in local}
            nightly(night, outage)
            assert snapshot(db).keys() == before.keys()
            assert all(snapshot(db)[k].equals(v) for k, v in before.items())  # unchanged
            continue
        nightly(night, local)
        if night == 1:
            p1 = production[1]

    # every night exits 0 but the outage night, which asks to be retried (75)
    assert exits == {n: (75 if n == OUTAGE else 0) for n in range(1, 31)}, {
        n: docs[n]["message"] for n in exits if exits[n]
    }
    out = docs[OUTAGE]
    assert out["status"] == "unavailable" and out["failed_step"] == "ingest"
    assert "storage unavailable" in out["steps"][0]["message"]

    def step(night: int, name: str) -> dict[str, Any]:
        return next(s for s in docs[night]["steps"] if s["step"] == name)

    # the ad-hoc estimate and the refused promotion never alert and never touch production
    assert all(production[n] == p1 for n in range(1, 8))
    assert all(step(n, "monitor")["status"] == "ok" for n in range(1, 8))
    # night 8: a new week, production's settings re-estimated on it: a refresh wins
    p2 = production[8]
    assert p2 != p1 and step(8, "promote")["status"] == "ok"
    assert "refresh" in step(8, "promote")["details"]["reason"]
    # night 10: the rollback sticks: the candidate it replaced is refused, production is p1
    # and the plan is rebuilt on it; nothing new on the following nights
    assert production[10] == p1 and step(10, "promote")["status"] == "refused"
    assert "rollback" in step(10, "promote")["message"]
    assert step(10, "optimize")["status"] == "ok"
    assert step(10, "optimize")["details"]["estimates_run"] == p1
    assert all(production[n] == p1 and not docs[n]["changed"] for n in range(11, OUTAGE))
    # night 16: storage is back, the week that failed to load arrives: a new candidate on
    # changed inputs wins against the rollback
    assert step(16, "ingest")["status"] == "ok" and production[16] not in (p1, p2)
    assert production[22] != production[16] and production[29] != production[22]
    # quiet nights change nothing; every production run has a plan built on it
    quiet = [n for n in range(1, 31) if n not in (1, 3, 8, 10, OUTAGE, 16, 22, 29)]
    assert all(not docs[n]["changed"] for n in quiet if n != 5)
    listed = json.loads(cli("runs", "list", "--db", db, "--json").stdout)
    plans = [r for r in listed if r["command"] == "optimize" and r["status"] == "ok"]
    for prod in set(production.values()):
        assert any(prod in json.loads(r["parents"]) for r in plans if r["parents"]), prod
    assert adhoc in [r["run_id"] for r in listed]
    # the registry: who decided what and why
    reg = json.loads(cli("registry", "--db", db, "--json").stdout)
    assert [r["run_id"] for r in reg][:3] == [production[29], production[22], production[16]]
    forced = [r for r in reg if r["forced"]]
    assert [(r["run_id"], r["reason"]) for r in forced] == [(p1, "rollback: INC-9")]
