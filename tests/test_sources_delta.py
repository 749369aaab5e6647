"""Delta tables as sources without a JVM (``deltalake``, extra ``pricelab[delta]``): ingest
``--sales delta:PATH`` (or a Delta folder) loads what the same rows as CSV load, with the
table in the lineage; the local engine's ``--source`` reads it too. Runs in ``nox -s spark``,
which installs the extra (the Spark engine's Delta reads: test_engine_spark_sources.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.engines.local import read_sales
from pricelab.store import Store
from tests.conftest import CliResult

deltalake = pytest.importorskip("deltalake", reason="needs pricelab[delta]")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_ingest_from_delta_equals_csv(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    sales = read_sales(SAMPLE / "sales.csv")
    table = tmp_path / "sales_delta"
    deltalake.write_deltalake(str(table), sales.head(30_000).to_arrow())
    deltalake.write_deltalake(str(table), sales.slice(30_000).to_arrow(), mode="append")
    items = tmp_path / "items_delta"
    deltalake.write_deltalake(str(items), pl.read_csv(SAMPLE / "items.csv").to_arrow())
    res = cli("ingest", "--db", tmp_path / "d.duckdb", "--sales", f"delta:{table}",
              "--items", items, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["loaded"] == {
        "sales": sales.height,
        "items": 150,
    }  # the sample's 150 items
    ref = cli("ingest", "--db", tmp_path / "c.duckdb", "--sales", SAMPLE / "sales.csv",
              "--items", SAMPLE / "items.csv")  # fmt: skip
    assert ref.exit_code == 0, ref.stderr
    q = "SELECT * FROM sales ORDER BY item_id, market, date"
    with (
        Store.open(tmp_path / "d.duckdb", read_only=True) as a,
        Store.open(tmp_path / "c.duckdb", read_only=True) as b,
    ):
        assert a.query(q).equals(b.query(q))
    run = api.run(tmp_path / "d.duckdb", json.loads(res.stdout)["run_id"])
    assert run["parameters"]["files"]["sales"]["path"] == f"delta:{table}"
    assert run["parameters"]["files"]["items"]["path"] == f"delta:{items}"


def test_missing_delta_table_is_bad_input(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    res = cli("ingest", "--db", db, "--sales", f"delta:{tmp_path / 'none'}")
    assert res.exit_code == 2
    assert (
        res.stderr
        == f"error: {tmp_path / 'none'}: not a Delta table (no _delta_log folder there)\n"
    )
    assert not db.exists()
