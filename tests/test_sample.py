"""The bundled sample: deterministic, in the contract's format, and its truth matches its data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from pricelab.errors import UsageError
from pricelab.io import read_table
from pricelab.sample import FILES, generate_sample, sample_dir

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "sample"
START = dt.date(2024, 1, 1)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, Path]:
    return generate_sample(tmp_path_factory.mktemp("sample_a"))


@pytest.fixture(scope="module")
def tables(fresh) -> dict[str, pl.DataFrame]:
    out = {name: read_table(path) for name, path in fresh.items()}
    assert out["sales"].schema["date"] == pl.String
    # strict ISO parse: fails on any other date form
    out["sales"] = out["sales"].with_columns(pl.col("date").str.to_date("%Y-%m-%d", strict=True))
    return out


def test_same_seed_gives_byte_identical_files(fresh, tmp_path):
    again = generate_sample(tmp_path / "b")
    assert sorted(again) == sorted(fresh) == sorted(FILES)
    for name in FILES:
        assert again[name].read_bytes() == fresh[name].read_bytes(), name


def test_other_seed_gives_other_data(fresh, tmp_path):
    other = generate_sample(tmp_path / "c", seed=1)
    assert other["sales"].read_bytes() != fresh["sales"].read_bytes()


def test_committed_sample_is_the_generator_output(fresh):
    for name in FILES:
        committed = COMMITTED / f"{name}.csv"
        assert committed.read_bytes() == fresh[name].read_bytes(), (
            f"data/sample/{name}.csv differs from generate_sample(); "
            "run: python examples/make_sample.py"
        )
    assert (COMMITTED / "README.md").is_file()
    assert sample_dir().resolve() == COMMITTED.resolve()


def test_sizes_under_5_mb():
    total = sum(p.stat().st_size for p in COMMITTED.iterdir() if p.is_file())
    assert 0 < total < 5 * 1024 * 1024


def test_sales_columns_types_and_rules(tables):
    sales = tables["sales"]
    assert sales.columns == ["item_id", "market", "date", "price", "quantity", "promo", "unit_cost"]
    assert sales.schema["quantity"] == pl.Int64 and sales.schema["promo"] == pl.Int64
    assert sales.schema["price"] == pl.Float64 and sales.schema["unit_cost"] == pl.Float64
    assert sales.null_count().row(0) == (0,) * sales.width
    assert sales["quantity"].min() >= 0 and sales["price"].min() > 0
    assert set(sales["promo"].unique()) == {0, 1}
    assert sales.select(pl.col("date").dt.weekday().unique())["date"].to_list() == [1]  # Mondays
    assert not sales.select(pl.struct("item_id", "market", "date").is_duplicated().any()).item()
    weeks = sales["date"].unique()
    assert weeks.min() == START and weeks.len() == 104
    # sparse luxury sales: many zero weeks, but some series sell 10+ a week
    per_pair = sales.group_by("item_id", "market").agg(pl.col("quantity").mean())["quantity"]
    assert (sales["quantity"] == 0).mean() > 0.3
    assert (per_pair >= 10).sum() >= 5 and (per_pair <= 3).mean() > 0.7


def test_other_tables(tables):
    items, markets = tables["items"], tables["markets"]
    assert items.columns[:4] == ["item_id", "category", "brand", "boutique_id"]
    assert items.width >= 5 and items.height == 150 and items["item_id"].is_unique().all()
    assert items["category"].n_unique() >= 4 and items["brand"].n_unique() >= 4
    assert 8 <= items["boutique_id"].n_unique() <= 12
    assert markets.columns == ["market", "currency", "fx_rate", "vat_rate"]
    assert markets.height == 5 and markets["currency"].n_unique() == 5
    assert markets.filter(pl.col("currency") == "EUR")["fx_rate"].to_list() == [1.0]
    assert tables["costs"].columns == ["item_id", "market", "unit_cost"]
    assert tables["costs"]["unit_cost"].min() > 0
    inv = tables["inventory"]
    assert inv.columns == ["item_id", "market", "stock"] and inv.schema["stock"] == pl.Int64
    assert inv["stock"].min() >= 1
    assert inv["market"].null_count() > 0 and inv["market"].drop_nulls().len() > 0
    assert not inv.select(pl.struct("item_id", "market").is_duplicated().any()).item()


def test_keys_exist_in_sales(tables):
    pairs = tables["sales"].select("item_id", "market").unique()
    items = tables["sales"].select("item_id").unique()
    for name in ("costs", "inventory"):
        t = tables[name]
        generic, specific = t.filter(pl.col("market").is_null()), t.drop_nulls("market")
        assert generic.join(items, on="item_id", how="anti").height == 0, name
        assert specific.join(pairs, on=["item_id", "market"], how="anti").height == 0, name
        assert specific.height > 0, name
    assert tables["items"].join(items, on="item_id", how="anti").height == 0
    truth = tables["true_elasticities"].select("item_id", "market")
    assert truth.sort(pl.all()).equals(pairs.sort(pl.all()))
    assert set(tables["markets"]["market"]) == set(pairs["market"])
    # not every item is sold in every market
    assert 0.6 < pairs.height / (150 * 5) < 0.95


def test_prices_realistic_in_eur(tables):
    eur = (
        tables["sales"]
        .join(tables["markets"], on="market")
        .select(pl.col("price") / pl.col("fx_rate"), pl.col("unit_cost"))
    )
    assert eur["price"].quantile(0.05) > 50 and eur["price"].quantile(0.95) < 20_000
    assert eur["price"].median() > 300
    assert (eur["unit_cost"] < eur["price"]).mean() > 0.9


def test_elasticity_distribution(tables):
    truth = tables["true_elasticities"].join(tables["items"], on="item_id")
    e = truth["elasticity"]
    assert e.max() < -0.5 and e.min() > -4.5
    assert 0.005 < (e > -1).mean() < 0.06  # a few inelastic, almost all elastic
    means = truth.group_by("category").agg(pl.col("elasticity").mean())["elasticity"]
    assert means.min() < -2.4 and means.max() > -1.7 and (means.max() - means.min()) > 0.8


def _fit(sales: pl.DataFrame, truth: pl.DataFrame, item: str, market: str):
    """Poisson GLM of one series on the demand model's regressors; returns (fit, true values)."""
    series = sales.filter((pl.col("item_id") == item) & (pl.col("market") == market))
    row = truth.filter((pl.col("item_id") == item) & (pl.col("market") == market)).row(
        0, named=True
    )
    # controls as pricelab.elasticity builds them: day-of-year Fourier pair, years since start
    theta = 2 * np.pi * np.array([d.timetuple().tm_yday for d in series["date"]]) / 365.25
    trend = np.array([(d - START).days for d in series["date"]]) / 365.25
    x = np.column_stack(
        [
            np.ones(series.height),
            np.log(series["price"].to_numpy() / row["ref_price"]),
            np.sin(theta),
            np.cos(theta),
            trend,
            series["promo"].to_numpy(),
        ]
    )
    true = np.array(
        [
            np.log(row["baseline_quantity"]),
            row["elasticity"],
            row["season_sin"],
            row["season_cos"],
            row["trend"],
            row["promo_effect"],
        ]
    )
    if series["promo"].n_unique() == 1:  # never promoted: the promo effect is not identified
        x, true = x[:, :-1], true[:-1]
    fit = sm.GLM(series["quantity"].to_numpy(), x, family=sm.families.Poisson()).fit()
    return fit, true


def _top_series(sales: pl.DataFrame, n: int) -> list[tuple[str, str]]:
    top = (
        sales.group_by("item_id", "market")
        .agg(pl.col("quantity").sum())
        .sort("quantity", "item_id", "market", descending=True)
        .head(n)
    )
    return list(zip(top["item_id"], top["market"], strict=True))


def test_poisson_glm_recovers_every_true_parameter(tables):
    """On the 12 highest-volume series, a correctly specified GLM agrees with the truth file."""
    sales = tables["sales"].sort("item_id", "market", "date")
    z = []
    for item, market in _top_series(sales, 12):
        fit, true = _fit(sales, tables["true_elasticities"], item, market)
        zs = (fit.params - true) / fit.bse
        assert np.all(np.abs(zs) < 4.0), (item, market, zs)
        assert fit.bse[1] < 0.5, (item, market)  # prices move enough to identify it
        z.append(zs[1])
    assert float(np.sum(np.square(z))) < stats.chi2.ppf(0.999, len(z))


def test_elasticity_z_scores_are_calibrated(tables):
    """Across the 60 busiest series the GLM errors look like N(0, 1) draws, with no shift."""
    sales = tables["sales"].sort("item_id", "market", "date")
    diffs, ses = [], []
    for item, market in _top_series(sales, 60):
        fit, true = _fit(sales, tables["true_elasticities"], item, market)
        diffs.append(fit.params[1] - true[1])
        ses.append(fit.bse[1])
    z = np.array(diffs) / np.array(ses)
    assert abs(z.mean()) < 3.0 / np.sqrt(len(z))
    assert 0.75 < z.std() < 1.25
    weights = np.array(ses) ** -2.0
    pooled_se = weights.sum() ** -0.5
    assert pooled_se < 0.05
    assert abs(np.average(diffs, weights=weights)) < 3.5 * pooled_se


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="Monday"):
        generate_sample(tmp_path, start="2024-01-03")
    with pytest.raises(UsageError, match="ISO date"):
        generate_sample(tmp_path, start="01/01/2024")
    with pytest.raises(UsageError, match="n_items"):
        generate_sample(tmp_path, n_items=3)


def test_small_run_other_start(tmp_path):
    paths = generate_sample(tmp_path, n_items=12, n_weeks=20, start="2023-06-05", seed=7)
    sales = read_table(paths["sales"]).with_columns(pl.col("date").str.to_date("%Y-%m-%d"))
    assert sales["item_id"].n_unique() <= 12 and sales["date"].max() <= dt.date(2023, 10, 16)
    assert sales["date"].min() == dt.date(2023, 6, 5)
