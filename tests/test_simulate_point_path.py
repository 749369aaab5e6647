"""simulate's point path (draws=0) against a straightforward reference computation.

The store is written out of key order (two shuffled inserts, as a table loaded by another
tool or appended to would be), with keys whose string order is not their numeric or
insertion order (``A1 < A10 < A2``, a non-ASCII id, ids that differ by a NUL byte), items
without attributes, markets with and without FX, landed and generic costs, and estimates
stored out of order for only some groups (one elasticity NaN, one standard error NaN).
The reference recomputes every output column from the raw sales with polars and numpy,
one step at a time, and sorts the keys with Python's own ordering of their bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab.demand.baseline import baseline
from pricelab.simulate import simulate
from pricelab.simulate.simulation import EXTRA_COLUMNS, SCENARIO_COLUMNS
from pricelab.store import Store, record_run

Z90 = 1.6448536269514722
START = dt.date(2024, 1, 1)
ITEMS = ["A1", "A10", "A2", "B", "B\x00A", "B\x01", "É1", "C"]
MARKETS = ["US", "DE", "GB", "JP"]
WEEKS, WINDOW, HORIZON = 14, 5, 3
ATTRS = pl.DataFrame(
    {
        "item_id": ["A1", "A10", "A2", "B", "B\x00A", "É1"],
        "category": ["shoes", "bags", "shoes", None, "bags", "shoes"],
        "brand": ["x", "y", "x", "z", None, "y"],
        "boutique_id": ["b1", "b2", "b1", "b2", "b3", None],
    }
)
FX = pl.DataFrame(
    {
        "market": ["DE", "GB", "JP"],
        "currency": ["EUR", "GBP", "JPY"],
        "fx_rate": [1.0, 0.85, 160.0],
        "vat_rate": [0.19, 0.2, 0.1],
    }
)
COSTS = pl.DataFrame(
    {
        "item_id": ["A1", "A1", "A2", "B"],
        "market": ["US", None, None, "GB"],
        "unit_cost": [30.0, 40.0, 50.0, 60.0],
    }
)
SCENARIOS = [
    {"name": "all+3", "changes": [{"where": {}, "price_change_pct": 3}]},
    {
        "name": "shoes-10-gb-at-20",
        "changes": [
            {"where": {"category": "shoes"}, "price_change_pct": -10},
            {"where": {"market": "GB"}, "price": 20.0},
        ],
    },
]


def sales(seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for item in ITEMS:
        for market in MARKETS:
            if rng.random() < 0.15:
                continue  # a pair never sold
            for w in range(WEEKS):
                if rng.random() < 0.2:
                    continue  # a week without a row
                cost = float(rng.uniform(5, 25)) if rng.random() < 0.9 else None
                price = float(rng.integers(20, 90) + rng.random())
                qty = int(rng.integers(0, 40))
                rows.append((item, market, START + dt.timedelta(weeks=w), price, qty, 0, cost))
    df = pl.DataFrame(
        rows,
        schema=["item_id", "market", "date", "price", "quantity", "promo", "unit_cost"],
        orient="row",
    )
    return df.with_columns(pl.col("promo").cast(pl.Int8))[rng.permutation(len(rows))]


def estimates(seed: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    keys = sales().select("item_id", "market").unique().sort("item_id", "market")
    keys = keys.filter(pl.int_range(pl.len()) % 6 != 2)  # some groups have no estimate
    n = keys.height
    e = -1.5 + 0.7 * rng.standard_normal(n)
    se = np.abs(0.3 * rng.standard_normal(n))
    e[1], se[4] = np.nan, np.nan
    return keys.with_columns(elasticity=e, std_error=se)[rng.permutation(n)]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("point") / "point.duckdb"
    s = sales()
    with Store.open(path) as store:
        half = s.height // 2
        store.insert_frame("sales", s[:half])
        store.insert_frame("sales", s[half:])
        store.insert_frame("items", ATTRS)
        store.insert_frame("markets", FX)
        store.insert_frame("costs", COSTS)
        run = record_run(store, "estimate", {"model": "fixture"})
        with store.transaction():
            store.write_result("elasticities", estimates(), run.run_id)
            run.finish({})
    return path


def key_order(df: pl.DataFrame) -> pl.DataFrame:
    """Rows sorted by (item_id, market) as byte strings, by Python's sort."""
    pairs = list(zip(df["item_id"].to_list(), df["market"].to_list(), strict=True))
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i][0].encode(), pairs[i][1].encode()))
    return df[order]


def reference_base() -> pl.DataFrame:
    """The baseline rows: window averages, estimates, FX, costs and attributes, sorted."""
    s = sales()
    last = s["date"].max()
    win = s.filter(pl.col("date") > last - dt.timedelta(weeks=WINDOW))
    agg = win.group_by("item_id", "market").agg(
        pl.col("quantity").mean().alias("units"),
        pl.col("price").mean().alias("p0"),
        pl.col("unit_cost").mean().alias("sales_cost"),
    )
    generic = COSTS.filter(pl.col("market").is_null()).select("item_id", cost_g="unit_cost")
    landed = COSTS.filter(pl.col("market").is_not_null()).rename({"unit_cost": "cost_m"})
    df = (
        agg.join(estimates(), on=["item_id", "market"], how="left")
        .join(FX.select("market", "fx_rate"), on="market", how="left")
        .join(landed, on=["item_id", "market"], how="left")
        .join(generic, on="item_id", how="left")
        .join(ATTRS.select("item_id", "category"), on="item_id", how="left")
        .with_columns(pl.col("fx_rate").fill_null(1.0))
        .with_columns(
            (pl.coalesce("cost_m", "cost_g", "sales_cost") * pl.col("fx_rate")).alias("cost")
        )
    )
    return key_order(df)


def reference_rows(base: pl.DataFrame, scenario: dict) -> dict[str, np.ndarray]:
    """Every projected column of one scenario, with numpy (NaN where the table has null)."""
    p0 = base["p0"].to_numpy()
    p1 = p0.copy()
    cat = base["category"].to_list()
    mkt = base["market"].to_list()
    for ch in scenario["changes"]:
        where = ch["where"]
        hit = np.array(
            [
                ("category" not in where or c == where["category"])
                and ("market" not in where or m == where["market"])
                for c, m in zip(cat, mkt, strict=True)
            ]
        )
        new = p0 * (1 + ch["price_change_pct"] / 100) if "price_change_pct" in ch else ch["price"]
        p1 = np.where(hit, new, p1)
    e = base["elasticity"].fill_null(np.nan).to_numpy()
    se = np.nan_to_num(base["std_error"].fill_null(np.nan).to_numpy(), nan=0.0)
    c = base["cost"].fill_null(np.nan).to_numpy()
    q0 = base["units"].to_numpy() * HORIZON
    changed = p1 != p0
    q = np.where(changed, q0 * (p1 / p0) ** e, q0)
    k = np.exp(Z90 * se * np.log(p1 / p0))
    lo, hi = np.minimum(q / k, q * k), np.maximum(q / k, q * k)
    m = p1 - c
    return {
        "baseline_price": p0,
        "scenario_price": p1,
        "baseline_quantity": q0,
        "scenario_quantity": q,
        "quantity_low": lo,
        "quantity_high": hi,
        "baseline_revenue": p0 * q0,
        "scenario_revenue": p1 * q,
        "baseline_profit": (p0 - c) * q0,
        "scenario_profit": m * q,
        "unit_cost": c,
        "elasticity": e,
        "price_change_pct": 100 * (p1 / p0 - 1),
        "revenue_low": p1 * lo,
        "revenue_high": p1 * hi,
        "profit_low": np.where(m >= 0, m * lo, m * hi),
        "profit_high": np.where(m >= 0, m * hi, m * lo),
    }


def test_baseline_rows_are_in_duckdbs_key_order(store_path: Path) -> None:
    with Store.open(store_path) as store:
        run = store.execute("SELECT run_id FROM runs WHERE command = 'estimate'")[0][0]
        got = baseline(store, WINDOW, estimates_run=run)
        want = store.query(
            "SELECT DISTINCT item_id, market FROM sales WHERE date > "
            "(SELECT max(date) FROM sales) - INTERVAL 35 DAY ORDER BY item_id, market"
        )
    assert got.select("item_id", "market").equals(want)
    assert got.select("item_id", "market").equals(key_order(want))
    assert {"B", "B\x00A", "B\x01", "É1"} <= set(got["item_id"].to_list())


@pytest.mark.parametrize("mode", ["average", "current"])
def test_baseline_order_does_not_depend_on_storage_order(tmp_path: Path, mode: str) -> None:
    frames = []
    for seed in (0, 1):
        s = sales()
        path = tmp_path / f"{seed}.duckdb"
        with Store.open(path) as store:
            store.insert_frame("sales", s[np.random.default_rng(seed).permutation(s.height)])
            run = record_run(store, "estimate", {"model": "fixture"})
            with store.transaction():
                store.write_result("elasticities", estimates(), run.run_id)
                run.finish({})
            frames.append(baseline(store, WINDOW, estimates_run=run.run_id, mode=mode))
    assert frames[0].select("item_id", "market").equals(frames[1].select("item_id", "market"))
    assert np.allclose(frames[0]["baseline_units"], frames[1]["baseline_units"], rtol=1e-14)


def test_point_path_matches_the_reference(store_path: Path) -> None:
    spec = {"baseline_weeks": WINDOW, "horizon_weeks": HORIZON, "scenarios": SCENARIOS}
    with Store.open(store_path) as store:
        res = simulate(store, spec, draws=0, record=False)
    base = reference_base()
    assert res.table.columns == SCENARIO_COLUMNS + EXTRA_COLUMNS
    assert res.table.height == 2 * base.height
    for sc in SCENARIOS:
        t = res.table.filter(pl.col("scenario") == sc["name"])
        assert t["item_id"].to_list() == base["item_id"].to_list()
        assert t["market"].to_list() == base["market"].to_list()
        assert t["category"].to_list() == base["category"].to_list()
        for col, want in reference_rows(base, sc).items():
            got = t[col].fill_null(np.nan).to_numpy()
            assert np.array_equal(np.isnan(got), np.isnan(want)), col
            ok = ~np.isnan(want)
            assert np.allclose(got[ok], want[ok], rtol=1e-12, atol=1e-12), col
        assert (t["seasonal_factor"] == 1.0).all()
        assert (t["cannibalised_quantity"] == 0.0).all()
        # the scenario's totals over its rows with a projection, in the base currency
        ref = reference_rows(base, sc)
        fx = base["fx_rate"].to_numpy()
        ok = ~np.isnan(ref["scenario_quantity"])
        total = res.totals().filter(pl.col("scenario") == sc["name"])
        assert total["n_missing"][0] == int((~ok).sum()) > 0
        for kpi, col in (("quantity", "quantity"), ("revenue", "revenue")):
            fx_div = 1.0 if kpi == "quantity" else fx[ok]
            for side in ("baseline", "scenario"):
                want = np.sum(ref[f"{side}_{col}"][ok] / fx_div)
                assert total[f"{side}_{kpi}"][0] == pytest.approx(want, rel=1e-12)
        assert total["quantity_low"].is_null().all()


def test_a_failure_while_the_fingerprint_runs_is_reported_as_itself(
    store_path: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's fingerprint is taken in a background thread on its own cursor; an error
    raised before or meanwhile (here an unknown market in a filter) must reach the CLI as a
    usage error (exit 2, database unchanged), not as a busy connection at close (exit 3)."""
    import shutil

    from pricelab.store import runs

    real = runs.input_fingerprint

    def slow(store: Store) -> dict:
        # a long query on the fingerprint's cursor: still running when simulate fails
        store.execute("SELECT sum(i) FROM range(400000000) t(i)")
        return real(store)

    monkeypatch.setattr(runs, "input_fingerprint", slow)
    db = tmp_path / "copy.duckdb"
    shutil.copy(store_path, db)
    scen = tmp_path / "bad.yaml"
    scen.write_text(
        "baseline_weeks: 5\nhorizon_weeks: 3\nscenarios:\n  - name: x\n    changes:\n"
        "      - where: {market: ZZ}\n        price_change_pct: 5\n"
    )
    with Store.open(db, read_only=True) as store:
        before = store.execute("SELECT count(*) FROM runs")[0][0]
    res = cli("simulate", "--db", db, "--scenario", scen, "--draws", "0")
    assert res.exit_code == 2, res.stderr
    assert "unknown market 'ZZ'" in res.stderr
    with Store.open(db, read_only=True) as store:
        assert store.execute("SELECT count(*) FROM runs")[0][0] == before


def test_a_write_failure_while_the_fingerprint_runs_is_reported_as_itself(
    store_path: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint's thread runs while the scenario rows are inserted; a failure of that
    write (here a StoreError from the totals' insert) rolls back the run and its rows and
    reaches the CLI as itself (exit 2), with the fingerprint's cursor settled first."""
    import shutil
    import threading

    from pricelab.errors import StoreError
    from pricelab.store import runs

    real, started = runs.input_fingerprint, threading.Event()

    def slow(store: Store) -> dict:
        started.set()
        store.execute("SELECT sum(i) FROM range(400000000) t(i)")  # still running at the failure
        return real(store)

    real_write = Store.write_result

    def failing(self: Store, name: str, df: pl.DataFrame, run_id: str) -> None:
        real_write(self, name, df, run_id)
        if name == "scenario_totals":
            assert started.wait(10)  # the fingerprint runs during the write
            raise StoreError("simulated write failure")

    monkeypatch.setattr(runs, "input_fingerprint", slow)
    monkeypatch.setattr(Store, "write_result", failing)
    db = tmp_path / "copy.duckdb"
    shutil.copy(store_path, db)
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "baseline_weeks: 5\nhorizon_weeks: 3\nscenarios:\n  - name: x\n    changes:\n"
        "      - where: {market: US}\n        price_change_pct: 5\n"
    )
    with Store.open(db, read_only=True) as store:
        before = store.snapshot()
    res = cli("simulate", "--db", db, "--scenario", scen, "--draws", "0")
    assert res.exit_code == 2, res.stderr
    assert "simulated write failure" in res.stderr
    with Store.open(db, read_only=True) as store:
        after = store.snapshot()
    assert after.keys() == before.keys()
    assert all(after[k].equals(before[k]) for k in before)


def test_the_recorded_run_holds_the_inputs_fingerprint(store_path: Path, tmp_path: Path) -> None:
    """``pricelab.api.simulate`` takes the fingerprint while the rows are inserted; the run
    records the fingerprint of the inputs as they are, and its stored rows are the result's."""
    import json
    import shutil

    from pricelab import api
    from pricelab.store.runs import fingerprint_digest, input_fingerprint

    db = tmp_path / "copy.duckdb"
    shutil.copy(store_path, db)
    spec = {"baseline_weeks": WINDOW, "horizon_weeks": HORIZON, "scenarios": SCENARIOS}
    res = api.simulate(db, spec, draws=0)
    with Store.open(db, read_only=True) as store:
        want = input_fingerprint(store)
        run = store.execute(
            "SELECT inputs, input_fingerprint FROM runs WHERE run_id = ?", [res.run_id]
        )
        stored = store.read_result("scenarios", res.run_id)
    assert json.loads(run[0][0]) == want
    assert run[0][1] == fingerprint_digest(want)
    assert want["sales"]["rows"] == sales().height
    assert stored.equals(res.table)
