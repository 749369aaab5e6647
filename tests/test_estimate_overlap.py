"""``estimate``'s serial sections overlapped (issue #20 goal 1): numba loads while DuckDB
works, the scan reads ahead while it loads, and ``--output`` with the run's summaries is
written while DuckDB stores the results. The outputs are the same as one step after the
other (the files, the stored tables, the summaries); errors still leave the database
unchanged and nothing running."""

from __future__ import annotations

import sys
import threading
import time

import polars as pl
import pytest

from pricelab import api
from pricelab.api.estimate import alongside
from pricelab.elasticity import compiled
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import chunked
from pricelab.engines.keyruns import prefetched
from pricelab.errors import UsageError
from pricelab.store import Store


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    sales, items, _ = simulate_panel(n_items=30, weeks=30, base_units=4.0, seed=3)
    tmp = tmp_path_factory.mktemp("overlap")
    sales.write_parquet(tmp / "sales.parquet")
    items.write_csv(tmp / "items.csv")
    db = str(tmp / "shop.duckdb")
    api.ingest(db, sales=tmp / "sales.parquet", items=tmp / "items.csv")
    return db


def _copy(db: str, tmp_path) -> str:
    import shutil

    out = str(tmp_path / "shop.duckdb")
    shutil.copy(db, out)
    return out


def test_output_is_written_while_the_results_are_stored(shop, tmp_path, monkeypatch) -> None:
    """The file is written by a helper thread while DuckDB inserts: each insert waits
    until the file has been started (one step after the other would time out)."""
    import pricelab.io

    db = _copy(shop, tmp_path)
    started = threading.Event()
    seen: list[str] = []
    write_table, write_result = pricelab.io.write_table, Store.write_result

    def write(df, path):
        seen.append(threading.current_thread().name)
        started.set()
        return write_table(df, path)

    def insert(self, name, df, run_id):
        assert started.wait(10), "the output file was not started beside the inserts"
        return write_result(self, name, df, run_id)

    monkeypatch.setattr(pricelab.io, "write_table", write)
    monkeypatch.setattr(Store, "write_result", insert)
    out = tmp_path / "el.parquet"
    run = api.estimate(db, model="ols", output=out)
    assert seen == ["pricelab-alongside"]
    written = pl.read_parquet(out)
    assert written.equals(run.elasticities)
    with Store.open(db, read_only=True) as store:
        stored = store.read_result("elasticities", run.run_id)
    assert stored.sort(["item_id", "market"]).equals(written.sort(["item_id", "market"]))


def test_summaries_equal_a_fresh_computation(shop, tmp_path) -> None:
    """The summaries computed beside the inserts (and kept) are the ones computed anew."""
    db = _copy(shop, tmp_path)
    run = api.estimate(db, model="ols", output=tmp_path / "el.csv")
    fresh = api.results.EstimateRun(run.run_id, run.results, run.elasticities)
    assert run.to_dict() == fresh.to_dict()
    assert run.distribution().equals(fresh.distribution())
    assert run.flagged().equals(fresh.flagged())
    doc = run.to_dict()
    doc["model"] = "changed"  # a caller's copy: the kept summary is not touched
    assert run.to_dict()["model"] == "ols"
    with Store.open(db, read_only=True) as store:
        row = store.query("SELECT summary FROM runs WHERE run_id = ?", [run.run_id])
    import json

    assert json.loads(row["summary"][0]) == json.loads(json.dumps(fresh.to_dict(), default=str))


def _snapshot(db: str) -> dict[str, pl.DataFrame]:
    with Store.open(db, read_only=True) as store:
        return store.snapshot()


def _same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def test_a_failed_output_write_leaves_the_database_unchanged(shop, tmp_path, monkeypatch) -> None:
    import pricelab.io

    db = _copy(shop, tmp_path)
    before = _snapshot(db)
    (tmp_path / "taken.parquet").mkdir()
    with pytest.raises(UsageError, match="taken.parquet"):  # refused before the fit
        api.estimate(db, model="ols", output=tmp_path / "taken.parquet")
    assert _same(before, _snapshot(db))

    def full(df, path):
        raise UsageError(f"{path}: no space left on device")

    monkeypatch.setattr(pricelab.io, "write_table", full)  # fails while results are stored
    with pytest.raises(UsageError, match="no space left"):
        api.estimate(db, model="ols", output=tmp_path / "el.parquet")
    assert _same(before, _snapshot(db))
    assert all(t.name != "pricelab-alongside" for t in threading.enumerate())


def test_alongside_waits_for_its_jobs_and_raises_the_block_error_first() -> None:
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.1)
        finished.append("slow")
        raise KeyError("job")

    with pytest.raises(ValueError, match="block"), alongside(slow):
        raise ValueError("block")
    assert finished == ["slow"]  # joined before the block's error left
    with pytest.raises(KeyError, match="job"), alongside(slow, lambda: finished.append("x")):
        pass
    assert finished == ["slow", "slow"]  # jobs after a failed one do not run
    done: list[int] = []
    with alongside(lambda: done.append(1), lambda: done.append(2)):
        pass
    assert done == [1, 2]


def test_warm_starts_loading_numba_when_the_fit_will_take_it(shop, monkeypatch) -> None:
    loaded: list[str] = []
    monkeypatch.setattr(compiled, "load_module", loaded.append)
    with Store.open(shop, read_only=True) as store:
        for jit, kwargs, expect in (
            ("0", {"model": "ols"}, []),
            ("1", {"model": "panel"}, []),
            ("1", {"model": "ols", "se": "HAC"}, []),
            ("1", {"model": "ols"}, ["ols_jit"]),
            ("1", {"model": "hierarchical"}, ["glm_jit"]),
        ):
            monkeypatch.setattr(compiled, "_LOADED", {})
            for name in ("ols_jit", "glm_jit"):
                monkeypatch.delitem(sys.modules, f"pricelab.elasticity.{name}", raising=False)
            monkeypatch.setenv("PRICELAB_JIT", jit)
            loaded.clear()
            chunked.warm(store, kwargs)
            for done in compiled._LOADED.values():
                assert done.wait(10)
            assert loaded == expect, (jit, kwargs)
    monkeypatch.delenv("PRICELAB_JIT")
    monkeypatch.setattr(compiled, "_LOADED", {})
    with Store.open(shop, read_only=True) as store:
        chunked.warm(store, {"model": "ols"})  # 900 rows: below JIT_ROWS
    assert compiled._LOADED == {}


def test_compiled_loading_is_true_until_the_load_ends(monkeypatch) -> None:
    go = threading.Event()
    monkeypatch.setattr(compiled, "load_module", lambda name: go.wait(10))
    monkeypatch.setattr(compiled, "_LOADED", {})
    monkeypatch.delitem(sys.modules, "pricelab.elasticity.ols_jit", raising=False)
    monkeypatch.setenv("PRICELAB_JIT", "1")
    assert not compiled.compiled_loading("ols")
    assert compiled.prepare_compiled(10, "cluster", "ols")
    assert compiled.compiled_loading("ols")
    assert not compiled.compiled_loading("poisson")
    go.set()
    assert compiled._LOADED["ols_jit"].wait(10)
    assert not compiled.compiled_loading("ols")


def _settled(count: list[int]) -> int:
    """``count[0]`` once it has not changed for 0.2 s (at most 10 s)."""
    last, since, end = -1, time.monotonic(), time.monotonic() + 10
    while time.monotonic() < end:
        if count[0] != last:
            last, since = count[0], time.monotonic()
        elif time.monotonic() - since > 0.2:
            break
        time.sleep(0.01)
    return last


@pytest.mark.parametrize("extra", [0, 3])
def test_prefetched_reads_more_ahead_while_asked(extra: int) -> None:
    made = [0]
    ahead = [extra]

    def items():
        for i in range(20):
            made[0] += 1
            yield i

    scan = prefetched(items(), depth=1, more=lambda: ahead[0])
    assert next(scan) == 0
    # the one taken, one ahead (depth), ``extra`` more, and the one waiting to be put
    assert _settled(made) == 1 + 1 + extra + 1
    ahead[0] = 0  # e.g. the kernel has loaded: back to one ahead
    assert [next(scan) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert list(scan) == list(range(6, 20))
