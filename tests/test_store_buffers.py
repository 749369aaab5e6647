"""DuckDB's buffer pool is bounded while ``estimate`` streams the sales
(:mod:`pricelab.store.buffers`): the limit is low during the scans and DuckDB's default
again after them (also after an error), a limit someone set is left alone, the results
are those of an unbounded scan, and a scan that runs out of memory under the bound runs
again without it."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from polars.testing import assert_frame_equal

from pricelab import api
from pricelab.elasticity import fit_streamed
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import chunked
from pricelab.store import Store, buffers
from pricelab.store.loaders import load_items


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def test_the_limit_is_low_inside_and_the_default_after() -> None:
    con = duckdb.connect()
    default = _limit(con)
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    bound = max(buffers.FLOOR, buffers.PER_THREAD * threads)
    with buffers.bounded_buffers(con) as lowered:
        assert lowered
        assert _limit(con) == f"{bound / 2**20:.1f} MiB"
    assert _limit(con) == default
    with pytest.raises(KeyError), buffers.bounded_buffers(con):
        raise KeyError("the block's own error")
    assert _limit(con) == default


def test_a_limit_someone_set_is_left_as_it_is() -> None:
    con = duckdb.connect()
    for setting in ("1.5GB", "32MB"):
        con.execute(f"SET memory_limit = '{setting}'")
        before = _limit(con)
        with buffers.bounded_buffers(con) as lowered:
            assert not lowered and _limit(con) == before
        assert _limit(con) == before


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    sales, items, _ = simulate_panel(n_items=40, weeks=30, seed=3)
    tmp = tmp_path_factory.mktemp("buffers")
    sales.write_parquet(tmp / "sales.parquet")
    items.write_parquet(tmp / "items.parquet")
    db = str(tmp / "shop.duckdb")
    api.ingest(db, sales=tmp / "sales.parquet", items=tmp / "items.parquet")
    return db


def _bound(con: duckdb.DuckDBPyConnection) -> str:
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    return f"{max(buffers.FLOOR, buffers.PER_THREAD * threads) / 2**20:.1f} MiB"


def _fit(
    db: str, model: str, monkeypatch: pytest.MonkeyPatch, oom_at: str | None = None
) -> tuple[list[str], Any]:
    """``estimate_chunked`` on ``db``, and ``"fit"`` at each streamed fit then the memory
    limit at each of its chunks; DuckDB's out-of-memory error at a chunk read under the
    limit ``oom_at``."""
    import pricelab.elasticity as el

    seen: list[str] = []
    with Store.open(db, read_only=True) as store:
        other = store.con.cursor()  # the limit is the database's: any connection shows it

        def spy(chunks, *args, **kwargs):
            seen.append("fit")

            def scan():
                for chunk in chunks():
                    seen.append(_limit(other))
                    if seen[-1] == oom_at:
                        raise duckdb.OutOfMemoryException("failed to pin block of size 256 KiB")
                    yield chunk

            return fit_streamed(scan, *args, **kwargs)

        monkeypatch.setattr(el, "fit_streamed", spy)
        res = chunked.estimate_chunked(
            store, {"model": model}, items=load_items(store), chunk_rows=200
        )
        assert _limit(store.con) == buffers._default_limit()  # restored
        other.close()
    return seen, res


@pytest.mark.parametrize("model", ["poisson", "hierarchical"])
def test_the_scans_run_bounded_and_give_the_unbounded_results(shop, monkeypatch, model) -> None:
    seen, got = _fit(shop, model, monkeypatch)
    assert seen[0] == "fit" and len(seen) > 3 and set(seen[1:]) == {_bound(duckdb.connect())}
    monkeypatch.setattr(buffers, "FLOOR", 1 << 50)  # above any default: never lowered
    free, ref = _fit(shop, model, monkeypatch)
    assert set(free[1:]) == {buffers._default_limit()} and len(free) == len(seen)
    for a, b in ((got.elasticities, ref.elasticities), (got.params, ref.params)):
        assert_frame_equal(a, b, check_exact=True)


def test_a_scan_out_of_memory_under_the_bound_runs_again_without_it(shop, monkeypatch) -> None:
    bound = _bound(duckdb.connect())
    seen, got = _fit(shop, "ols", monkeypatch, oom_at=bound)
    # the first fit stopped at its first chunk; the second one ran unbounded
    assert seen[:3] == ["fit", bound, "fit"] and set(seen[3:]) == {buffers._default_limit()}
    monkeypatch.setattr(buffers, "FLOOR", 1 << 50)
    _, ref = _fit(shop, "ols", monkeypatch)
    assert_frame_equal(got.elasticities, ref.elasticities, check_exact=True)
    # out of memory without the bound: the error itself, no second fit
    seen.clear()
    with pytest.raises(duckdb.OutOfMemoryException):
        _fit(shop, "ols", monkeypatch, oom_at=buffers._default_limit())


def test_duckdb_runs_out_of_memory_under_a_tiny_bound(shop) -> None:
    """What the fallback is for, with DuckDB's own error: a limit below one block."""
    with duckdb.connect(shop, read_only=True) as con:
        con.execute("SET memory_limit = '256KiB'")
        with pytest.raises(duckdb.OutOfMemoryException):
            con.sql("SELECT * FROM sales").fetchall()
