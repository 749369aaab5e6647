"""One ``record_run``: ``validate`` and ``monitor`` record the same runs from the CLI as
inside the pipeline (command, parameters, status, summary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pricelab import api
from pricelab.monitor import merge_config
from pricelab.store import Store, record_run, start_run


def _runs(db: Path, command: str) -> list[dict[str, Any]]:
    with Store.open(db, read_only=True) as store:
        df = store.query(
            "SELECT run_id, command, status, parameters, summary FROM runs WHERE command = ? "
            "ORDER BY started_at",
            [command],
        )
    return [
        {**r, "parameters": json.loads(r["parameters"]), "summary": json.loads(r["summary"])}
        for r in df.iter_rows(named=True)
    ]


def test_cli_validate_records_the_pipelines_validate_run(
    loaded_db: Path, cli: Callable[..., Any]
) -> None:
    assert _runs(loaded_db, "validate") == []
    res = cli("validate", "--db", loaded_db)
    assert res.exit_code == 0, res.stderr
    (run,) = _runs(loaded_db, "validate")
    report = api.validate(loaded_db, record=False)
    # what the pipeline's validate step records: no parameters, the report as summary
    assert run["parameters"] == {} and run["status"] == "ok"
    assert run["summary"] == json.loads(json.dumps(report.to_dict(), default=str))
    assert _runs(loaded_db, "validate") == [run]  # record=False wrote nothing


def test_cli_monitor_records_a_monitor_run(loaded_db: Path, cli: Callable[..., Any]) -> None:
    res = cli("monitor", "--db", loaded_db, "--as-of", "2024-03-10")
    (run,) = _runs(loaded_db, "monitor")
    assert res.exit_code == (0 if run["status"] == "ok" else 1)
    assert run["status"] in ("ok", "alert")
    assert run["parameters"] == {"as_of": "2024-03-10", "config": merge_config(None)}
    assert run["summary"]["as_of"] == "2024-03-10"
    assert {c["name"] for c in run["summary"]["checks"]} >= {"freshness"}
    result = api.monitor(loaded_db, as_of="2024-03-10", record=False)
    assert result.run_id is None and len(_runs(loaded_db, "monitor")) == 1
    assert result.to_dict() == run["summary"]


def test_record_run_is_the_one_function(loaded_db: Path) -> None:
    assert start_run is record_run  # the former name is the same function
    with Store.open(loaded_db) as store:
        run = record_run(store, "custom", {"k": 1}, parents=["abc"])
        run.finish({"n": 2})
    (row,) = _runs(loaded_db, "custom")
    assert row["parameters"] == {"k": 1} and row["summary"] == {"n": 2} and row["status"] == "ok"
