"""simulate: seasonality-adjusted baseline against a known seasonal pattern and closed forms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_simulate_projection import make_db, reference_baseline, run_sim

from pricelab import api
from pricelab.demand.season import CLIP, YEAR_DAYS
from pricelab.errors import ConfigError
from pricelab.simulate import load_scenario, simulate
from pricelab.store import Store, record_run

A_SIN, A_COS, ELASTICITY = 0.4, 0.25, -2.0
#: ends on 2023-11-27 (day 331): an 8-week window in the autumn low, a 13-week horizon
#: into the winter high
START, WEEKS = dt.date(2020, 12, 7), 156


def season(dates: list[dt.date] | np.ndarray) -> np.ndarray:
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    angle = 2 * np.pi * doy / YEAR_DAYS
    return A_SIN * np.sin(angle) + A_COS * np.cos(angle)


def seasonal_sales(n_items: int = 30, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Poisson weekly units with a known annual pattern; also the true horizon units."""
    rng = np.random.default_rng(seed)
    dates = [START + dt.timedelta(weeks=w) for w in range(WEEKS)]
    horizon = [dates[-1] + dt.timedelta(weeks=k) for k in range(1, 14)]
    s, s_h = season(dates), season(horizon)
    frames, truth = [], []
    for i in range(n_items):
        for m in ("US", "DE"):
            level, p_ref = rng.uniform(np.log(15), np.log(40)), rng.uniform(100, 900)
            price = p_ref * np.exp(rng.uniform(-0.1, 0.1, WEEKS))
            mu = np.exp(level + ELASTICITY * np.log(price / p_ref) + s)
            frames.append(
                pl.DataFrame(
                    {
                        "item_id": f"I{i:02d}",
                        "market": m,
                        "date": dates,
                        "price": price,
                        "quantity": rng.poisson(mu),
                    }
                )
            )
            p_bar = price[-8:].mean()  # the baseline price: the window's average price
            truth.append(
                (
                    f"I{i:02d}",
                    m,
                    float(np.mean(np.exp(level + ELASTICITY * np.log(p_bar / p_ref) + s_h))),
                )
            )
    return pl.concat(frames), pl.DataFrame(
        truth, schema=["item_id", "market", "truth"], orient="row"
    )


@pytest.fixture(scope="module")
def seasonal_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame, str]:
    tmp = tmp_path_factory.mktemp("season")
    sales, truth = seasonal_sales()
    sales.write_csv(tmp / "sales.csv")
    db = tmp / "season.duckdb"
    api.ingest(db, sales=tmp / "sales.csv")
    run = api.estimate(db, model="ols").run_id
    return db, truth, run


def scenario(seasonality: str = "auto") -> dict:
    return {
        "baseline_weeks": 8,
        "horizon_weeks": 13,
        "seasonality": seasonality,
        "scenarios": [{"name": "flat", "changes": [{"price_change_pct": 0}]}],
    }


def test_adjusted_baseline_beats_plain_average_in_another_season(seasonal_db):
    db, truth, run = seasonal_db
    with Store.open(db) as store:
        adj = simulate(store, scenario(), estimates=run, draws=0, record=False)
        plain = simulate(store, scenario("off"), estimates=run, draws=0, record=False)
    assert adj.seasonality["applied"] and adj.seasonality["terms"] == ["sin1", "cos1"]
    assert not plain.seasonality["applied"]
    assert (plain.table["seasonal_factor"] == 1.0).all()
    t = (
        adj.table.select("item_id", "market", (pl.col("baseline_quantity") / 13).alias("adj"))
        .join(
            plain.table.select(
                "item_id", "market", (pl.col("baseline_quantity") / 13).alias("plain")
            ),
            on=["item_id", "market"],
        )
        .join(truth, on=["item_id", "market"])
    )
    err_adj = float(((t["adj"] / t["truth"]) - 1).abs().mean())
    err_plain = float(((t["plain"] / t["truth"]) - 1).abs().mean())
    # true winter/autumn ratio is ~1.7: the plain average is ~40% low
    print(f"mean abs relative error: adjusted {err_adj:.3f}, plain {err_plain:.3f}")
    assert err_plain > 0.3
    assert err_adj < 0.15 and err_adj < 0.35 * err_plain
    # the multiplier is the estimate's own ratio; it stays inside the clip
    f = adj.table["seasonal_factor"]
    assert float(f.min()) >= CLIP[0] and float(f.max()) <= CLIP[1]
    assert np.allclose(
        t["adj"],
        t["plain"]
        * adj.table.sort("item_id", "market").join(t, on=["item_id", "market"])["seasonal_factor"],
        rtol=1e-12,
    )


def _store_params(
    db: Path,
    sin1: dict[tuple[str, str], float],
    flags: dict[tuple[str, str], str],
    keys: pl.DataFrame,
) -> str:
    with Store.open(db) as store:
        run = record_run(
            store,
            "estimate",
            {
                "fit": {
                    "controls": ["promo", "fourier"],
                    "by": ["item_id", "market"],
                    "origin": "2024-01-01",
                }
            },
        )
        k = [tuple(r) for r in keys.iter_rows()]
        params = keys.with_columns(
            pl.lit(5.0).alias("intercept"),
            pl.lit(-2.0).alias("log_price"),
            pl.lit(0.3).alias("promo"),
            pl.Series("sin1", [sin1.get(x, 0.0) for x in k]),
            pl.lit(0.0).alias("cos1"),
            pl.lit(1.0).alias("smearing"),
        )
        est = keys.with_columns(
            pl.lit(-2.0).alias("elasticity"),
            pl.lit(0.1).alias("std_error"),
            pl.Series("flags", [flags.get(x, "") for x in k]),
        )
        with store.transaction():
            store.write_result("elasticities", est, run.run_id)
            store.write_result("elasticity_params", params, run.run_id)
            run.finish({})
        return run.run_id


def test_factor_closed_form_clip_and_flagged_fit(tmp_path):
    db, _ = make_db(tmp_path)
    with Store.open(db) as store:
        keys = store.query("SELECT DISTINCT item_id, market FROM sales ORDER BY 1, 2")
        last = store.execute("SELECT max(date) FROM sales")[0][0]
    run = _store_params(
        db,
        {("I1", "US"): 0.3, ("I2", "DE"): 40.0, ("I3", "GB"): -40.0, ("I1", "GB"): 0.5},
        {("I1", "GB"): "few_obs,shrunk", ("I2", "US"): "shrunk"},
        keys,
    )
    res = run_sim(
        db,
        [{"name": "z", "changes": [{"price_change_pct": 0}]}],
        weeks=4,
        horizon=6,
        estimates=run,
        draws=0,
    )
    f = {
        (r[0], r[1]): r[2]
        for r in res.table.select("item_id", "market", "seasonal_factor").iter_rows()
    }
    window = [last - dt.timedelta(weeks=k) for k in range(4)]
    horizon = [last + dt.timedelta(weeks=k) for k in range(1, 7)]

    def level(b: float, dates: list[dt.date]) -> float:
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        return float(np.mean(np.exp(b * np.sin(2 * np.pi * doy / YEAR_DAYS))))

    assert f[("I1", "US")] == pytest.approx(level(0.3, horizon) / level(0.3, window), rel=1e-12)
    assert f[("I1", "US")] != 1.0
    assert f[("I2", "DE")] in CLIP and f[("I3", "GB")] in CLIP  # wild terms clipped
    assert f[("I1", "GB")] == 1.0  # few_obs: plain average
    assert f[("I2", "US")] == 1.0  # shrunk, sin1 = 0
    assert res.seasonality == {
        "applied": True,
        "terms": ["sin1", "cos1"],
        "adjusted_rows": 8,
        "clipped_rows": 2,
        "flagged_rows": 1,
        "clip": [0.5, 2.0],
    }
    assert any("2 row(s) had a seasonal multiplier outside [0.5, 2]" in w for w in res.warnings)
    # baseline units are the window average times the factor (reference computed in polars)
    ref = reference_baseline(4).join(res.table, on=["item_id", "market"])
    assert np.allclose(ref["baseline_quantity"], 6 * ref["q"] * ref["seasonal_factor"], rtol=1e-12)
    again = run_sim(
        db,
        [{"name": "z", "changes": [{"price_change_pct": 0}]}],
        weeks=4,
        horizon=6,
        estimates=run,
        draws=0,
    ).table
    assert again.equals(res.table)


def test_no_fourier_terms_means_no_adjustment_and_off_parses(tmp_path):
    db, est = make_db(tmp_path)  # the fixture estimate stores no elasticity_params
    res = run_sim(db, [{"name": "a", "changes": [{"price_change_pct": 5}]}], draws=0)
    assert not res.seasonality["applied"] and (res.table["seasonal_factor"] == 1.0).all()
    assert res.totals()["quantity_low"].is_null().all()  # draws=0: no aggregate intervals
    spec = load_scenario(
        {"seasonality": False, "scenarios": [{"name": "a", "changes": [{"price": 10}]}]}
    )  # YAML `off` reads as false
    assert spec.seasonality == "off" and spec.to_dict()["seasonality"] == "off"
    with pytest.raises(ConfigError, match="seasonality: expected one of auto, off, got 'on'"):
        load_scenario(
            {"seasonality": "on", "scenarios": [{"name": "a", "changes": [{"price": 10}]}]}
        )
