"""pricelab on more public datasets, checked against statsmodels fits of the same data.

Data: ``../shared/data`` (cigar_baltagi, tuna_dominicks, hass_avocado, cheese_borden,
dominicks_beer, retail_price_olist); every test skips when its folder is absent. The
references live in :mod:`tests._realdata_refs`: dummy-variable OLS for the absorbed fixed
effects, statsmodels per-group OLS/GLM loops, IV2SLS, and a quadrature of the normal
hierarchical posterior. Sanity numbers quoted from a folder's README are marked as such.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate
from tests import _realdata_refs as R

pytestmark = pytest.mark.realdata


def _by_key(res, key: str = "item_id") -> dict[str, dict]:
    return {r[key]: r for r in res.elasticities.iter_rows(named=True)}


def _assert_groups(res, ref: dict[str, tuple[float, float]], key: str, tol: float = 1e-6):
    got = _by_key(res, key)
    assert set(got) == set(ref)
    for k, (coef, se) in ref.items():
        assert got[k]["elasticity"] == pytest.approx(coef, abs=tol), k
        assert got[k]["std_error"] == pytest.approx(se, rel=tol), k


# -- cigar_baltagi: state x year panel -------------------------------------------------------
@pytest.fixture(scope="module")
def cig() -> pl.DataFrame:
    return R.cigar()


def _cig_xy(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    y = np.log(df["quantity"].to_numpy())
    return y, np.column_stack([np.log(df["price"].to_numpy()), df["ly"], df["lpn"]])


def test_cigar_panel_common_slope_is_two_way_dummy_ols_clustered_by_state(cig):
    res = estimate(cig, model="panel", slope="common", controls=["ly", "lpn"])
    y, x = _cig_xy(cig)
    ref = R.dummy_ols(y, x, [cig["item_id"], cig["date"]], cluster=cig["item_id"])
    row, par = res.elasticities.row(0, named=True), res.params.row(0, named=True)
    assert row["elasticity"] == pytest.approx(ref.params[1], abs=1e-8)
    assert row["std_error"] == pytest.approx(ref.bse[1], rel=1e-6)
    assert [par["ly"], par["lpn"]] == pytest.approx(list(ref.params[2:4]), abs=1e-8)
    # within R²: 1 - RSS(full) / RSS(state and year dummies alone)
    fe_only = R.dummy_ols(y, np.empty((y.size, 0)), [cig["item_id"], cig["date"]])
    assert row["fit_stat"] == pytest.approx(1 - ref.ssr / fe_only.ssr, abs=1e-8)
    assert row["n_obs"] == 1380
    # the data README (two-way FE, computed there): lp -1.023, ly 0.520, lpn -0.117
    assert row["elasticity"] == pytest.approx(-1.023, abs=5e-4)


@pytest.mark.parametrize(("fe", "readme"), [(["item_id"], -0.824), (["item_id", "date"], -1.023)])
def test_cigar_absorbed_ols_is_dummy_ols_hc1(cig, fe, readme):
    res = estimate(cig, model="ols", by=None, fixed_effects=fe, controls=["ly", "lpn"])
    y, x = _cig_xy(cig)
    ref = R.dummy_ols(y, x, [cig[c] for c in fe], cov="HC1")
    row = res.elasticities.row(0, named=True)
    assert row["elasticity"] == pytest.approx(ref.params[1], abs=1e-8)
    assert row["std_error"] == pytest.approx(ref.bse[1], rel=1e-6)
    assert row["elasticity"] == pytest.approx(readme, abs=5e-4)


def test_cigar_panel_item_slopes_are_interacted_dummy_ols(cig):
    res = estimate(cig, model="panel", slope="item", controls=["ly", "lpn"])
    y, x = _cig_xy(cig)
    states = cig["item_id"].to_numpy()
    levels = np.unique(states)
    S = (states[:, None] == levels[None, :]).astype(float)
    # one intercept and one slope per state on lp, ly, lpn; common year effects
    X = np.column_stack([S, *[S * x[:, [j]] for j in range(3)], R.dummies(cig["date"])])
    full = sm.OLS(y, X).fit(method="qr")
    slope = dict(zip(levels, full.params[len(levels) : 2 * len(levels)], strict=True))
    year = np.r_[0.0, full.params[4 * len(levels) :]][R.codes(cig["date"])]
    # documented SE: HC1 within the state, given the common year effects
    ref = {}
    for s, g in R.groups(cig.with_columns(_y=pl.Series(y - year)), "item_id"):
        fit = sm.OLS(g["_y"].to_numpy(), R.with_const(*_cig_xy(g)[1].T)).fit(cov_type="HC1")
        assert fit.params[1] == pytest.approx(slope[s], abs=1e-8)
        ref[s] = (slope[s], float(fit.bse[1]))
    _assert_groups(res, ref, "item_id")


# -- tuna_dominicks: 2SLS with the wholesale price, weak for some brands ---------------------
@pytest.fixture(scope="module")
def tuna_ref() -> tuple[pl.DataFrame, dict[str, tuple[float, float, float]]]:
    df = R.tuna()
    ref = {}
    for b, g in R.groups(df, "item_id"):
        ref[b] = R.iv2sls(
            np.log(g["units"].to_numpy()),
            g["lprice"].to_numpy(),
            g["lwholesale"].to_numpy(),
            g.select("nsale", "lcust").to_numpy(),
        )
    return df, ref


def test_tuna_2sls_per_brand_is_statsmodels_iv2sls(tuna_ref):
    df, ref = tuna_ref
    res = estimate(
        df, model="iv", instrument="unit_cost", controls=["nsale", "lcust"], se="nonrobust"
    )
    got = _by_key(res)
    assert set(got) == set(ref)
    for b, (coef, se, _) in ref.items():
        assert got[b]["elasticity"] == pytest.approx(coef, rel=1e-6, abs=1e-8), b
        assert got[b]["std_error"] == pytest.approx(se, rel=1e-6), b
        assert got[b]["n_obs"] == 338


def test_tuna_first_stage_f_and_weak_instrument_flags(tuna_ref):
    df, ref = tuna_ref
    res = estimate(df, model="iv", instrument="unit_cost", controls=["nsale", "lcust"])
    got = _by_key(res)
    for b, (_, _, f_value) in ref.items():
        assert got[b]["first_stage_f"] == pytest.approx(f_value, rel=1e-6), b
        assert ("weak_instrument" in got[b]["flags"].split(",")) == (f_value < 10), b
    # the data README names brands 3, 5 and 7 as the weak-instrument cases
    assert {b for b, r in got.items() if "weak_instrument" in r["flags"]} == {"3", "5", "7"}
    # HC1 2SLS values of the README table (rounded there): brand 2 -3.93 (0.28), 4 -4.28 (0.67)
    assert (got["2"]["elasticity"], got["2"]["std_error"]) == pytest.approx((-3.93, 0.28), abs=6e-3)
    assert (got["4"]["elasticity"], got["4"]["std_error"]) == pytest.approx((-4.28, 0.67), abs=6e-3)


def test_tuna_control_function_is_poisson_glm_on_the_first_stage_residual(tuna_ref):
    df, _ = tuna_ref
    res = estimate(
        df, model="iv", instrument="unit_cost", controls=["nsale", "lcust"], iv_method="cf"
    )
    got = _by_key(res)
    for b, g in R.groups(df, "item_id"):
        w = g.select("nsale", "lcust").to_numpy()
        Z = R.with_const(g["lwholesale"].to_numpy(), *w.T)
        v = sm.OLS(g["lprice"].to_numpy(), Z).fit().resid
        X = R.with_const(g["lprice"].to_numpy(), *w.T, v)
        fit = sm.GLM(g["units"].to_numpy().astype(float), X, family=sm.families.Poisson()).fit(
            tol=1e-13
        )
        assert got[b]["elasticity"] == pytest.approx(fit.params[1], rel=1e-7, abs=1e-9), b
    assert got["2"]["method"] == "iv-cf"


# -- hass_avocado: per-region fits -------------------------------------------------------------
@pytest.fixture(scope="module")
def avocado() -> pl.DataFrame:
    return R.hass()


@pytest.mark.parametrize("controls", [None, "default"])
def test_hass_ols_per_region_is_statsmodels_ols(avocado, controls):
    res = estimate(avocado, model="ols", controls=controls, se="HC1")
    first = avocado["date"].min()

    def fit(g):
        extra = R.fourier_trend(g, first) if controls else []
        X = R.with_const(np.log(g["price"].to_numpy()), *extra)
        f = sm.OLS(np.log(g["quantity"].to_numpy()), X).fit(cov_type="HC1")
        return float(f.params[1]), float(f.bse[1])

    _assert_groups(res, R.per_group(avocado, "market", fit), "market")
    assert res.elasticities.height == 45


def test_hass_ols_hac_is_statsmodels_newey_west(avocado):
    res = estimate(avocado, model="ols", controls=None, se="HAC")
    lags = int(np.floor(4 * (169 / 100) ** (2 / 9)))  # the documented default bandwidth: 4

    def fit(g):
        g = g.sort("date")
        f = sm.OLS(
            np.log(g["quantity"].to_numpy()), R.with_const(np.log(g["price"].to_numpy()))
        ).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        return float(f.params[1]), float(f.bse[1])

    _assert_groups(res, R.per_group(avocado, "market", fit), "market")


def test_hass_poisson_per_region_is_statsmodels_glm(avocado):
    # units are fractional scan volumes, not counts: Poisson PML needs only E[q | p] (a
    # non-negative outcome); statsmodels' GLM accepts them, `pricelab ingest` would not
    res = estimate(avocado, model="poisson", controls=None, se="HC0")
    res1 = estimate(avocado, model="poisson", controls=None, se="HC1")

    def fit(g):
        X = R.with_const(np.log(g["price"].to_numpy()))
        f = sm.GLM(g["quantity"].to_numpy(), X, family=sm.families.Poisson()).fit(
            cov_type="HC0", tol=1e-13
        )
        return float(f.params[1]), float(f.bse[1])

    ref = R.per_group(avocado, "market", fit)
    _assert_groups(res, ref, "market")
    # HC1 = HC0 * sqrt(n / (n - k)) (statsmodels' GLM "HC1" has no such factor)
    _assert_groups(res1, {k: (c, s * np.sqrt(169 / 167)) for k, (c, s) in ref.items()}, "market")


# -- cheese_borden: per-retailer fits and their hierarchical pooling -----------------------
@pytest.fixture(scope="module")
def borden() -> pl.DataFrame:
    return R.cheese()


def _cheese_x(g: pl.DataFrame) -> np.ndarray:
    return R.with_const(np.log(g["price"].to_numpy()), g["DISP"].to_numpy())


def test_cheese_ols_per_retailer_is_statsmodels_ols(borden):
    res = estimate(borden, model="ols", controls=["DISP"], se="HC1")

    def fit(g):
        f = sm.OLS(np.log(g["quantity"].to_numpy()), _cheese_x(g)).fit(cov_type="HC1")
        return float(f.params[1]), float(f.bse[1])

    _assert_groups(res, R.per_group(borden, "item_id", fit), "item_id")
    # retailers whose display share never varies: DISP dropped, the price slope still fitted
    flat = borden.group_by("item_id").agg(pl.col("DISP").n_unique() == 1).filter("DISP")
    assert flat.height == 2
    assert (
        res.params.filter(pl.col("item_id").is_in(flat["item_id"].to_list()))["DISP"].is_nan().all()
    )
    # the data README: median per-retailer slope -2.05, 2 retailers positive
    e = res.elasticities["elasticity"]
    assert e.median() == pytest.approx(-2.05, abs=5e-3)
    assert (e > 0).sum() == 2


@pytest.fixture(scope="module")
def cheese_glm(borden) -> dict[str, dict[str, float]]:
    return R.poisson_glm(borden, "item_id", _cheese_x)


def test_cheese_poisson_per_retailer_is_statsmodels_glm(borden, cheese_glm):
    res = estimate(borden, model="poisson", controls=["DISP"], se="HC0")
    _assert_groups(res, {k: (r["e"], np.sqrt(r["hc0"])) for k, r in cheese_glm.items()}, "item_id")


def test_cheese_hierarchical_is_the_normal_posterior_by_quadrature(borden, cheese_glm):
    """Posterior of the per-retailer Poisson slopes (one level: market 'US') by quadrature."""
    res = estimate(borden, model="hierarchical", controls=["DISP"], se="HC1")
    keys = sorted(cheese_glm)
    e, v = R.pooled_variances(cheese_glm)
    assert np.median(v / [cheese_glm[k]["model"] for k in keys]) > 50  # overdispersed
    # the retailers share weeks: their sampling covariances enter the posterior variances
    cross = R.shared_covariance(cheese_glm)
    mean, sd, prior_weight = R.posterior_by_quadrature(e, v, cross=cross)
    got = _by_key(res)
    assert np.array([got[k]["elasticity"] for k in keys]) == pytest.approx(mean, abs=1e-6)
    assert np.array([got[k]["std_error"] for k in keys]) == pytest.approx(sd, rel=1e-5)
    shrunk = {k for k in keys if "shrunk" in got[k]["flags"].split(",")}
    assert shrunk == {k for k, w in zip(keys, prior_weight, strict=True) if w >= 0.25}
    assert 0 < len(shrunk) < len(keys)
    # pooling pulls the outliers in: no positive slope left, and the spread narrows
    assert np.nanmax(mean) < 0 < np.max(e)
    assert np.ptp(mean) < 0.5 * np.ptp(e)


def test_cheese_hierarchical_three_retailer_level_is_the_bounded_flat_prior_posterior(borden):
    """A level of 3 groups: the posterior under the documented prior, flat on tau over
    [0, 5 max(sd(e), sqrt(mean v))] (to infinity the posterior mean of tau^2 diverges)."""
    # pool by city: South Carolina has 3 retailers, so its level is fitted on those 3 alone
    by_city = borden.with_columns(market=pl.col("city"))
    res = estimate(by_city, model="hierarchical", controls=None, se="HC1")
    level = by_city.filter(pl.col("city") == "SOUTH CAROLINA")
    fits = R.poisson_glm(level, "item_id", lambda g: R.with_const(np.log(g["price"].to_numpy())))
    e, v = R.pooled_variances(fits)
    upper = 5.0 * np.sqrt(max(np.var(e, ddof=1), np.mean(v)))
    first = int(by_city["date"].min().toordinal() - dt.date(1970, 1, 1).toordinal()) // 7
    cross = R.shared_covariance(fits, first=first)
    mean, sd, _ = R.posterior_by_quadrature(e, v, upper, cross=cross)
    got = _by_key(res)
    keys = sorted(fits)
    assert len(keys) == 3
    # the bound matters here: the unbounded flat prior moves the means by up to 0.8
    far, _, _ = R.posterior_by_quadrature(e, v, cross=cross)
    assert np.max(np.abs(far - mean)) > 0.5
    assert np.array([got[k]["elasticity"] for k in keys]) == pytest.approx(mean, abs=1e-3)
    assert np.array([got[k]["std_error"] for k in keys]) == pytest.approx(sd, rel=1e-3)


# -- dominicks_beer: unbalanced UPC x week panel -------------------------------------------
def test_beer_panel_common_slope_is_upc_week_dummy_ols(tmp_path):
    df = R.beer()
    res = estimate(df, model="panel", slope="common", controls=None)
    y = np.log(df["quantity"].to_numpy())
    ref = R.dummy_ols(
        y,
        np.log(df["price"].to_numpy())[:, None],
        [df["item_id"], df["week"]],
        cluster=df["item_id"],
    )
    row = res.elasticities.row(0, named=True)
    assert row["elasticity"] == pytest.approx(ref.params[1], abs=1e-7)
    assert row["std_error"] == pytest.approx(ref.bse[1], rel=1e-5)
    assert row["n_obs"] == df.height == 14_894
    # the data README: UPC + week FE -3.192
    assert row["elasticity"] == pytest.approx(-3.192, abs=5e-4)


# -- retail_price_olist: messy product x month file through the CLI -------------------------
@pytest.fixture
def olist(tmp_path):
    raw = pl.read_csv(R.need("retail_price_olist", "retail_price.csv"))
    sales = raw.select(
        item_id="product_id",
        market=pl.lit("BR"),
        date="month_year",
        price="unit_price",
        quantity="qty",
    )
    path = tmp_path / "olist_sales.csv"
    sales.write_csv(path)
    return raw, path, tmp_path / "olist.duckdb"


def test_olist_raw_file_is_rejected_naming_the_missing_columns(cli, olist):
    from tests.conftest import assert_same, snapshot

    raw, path, db = olist
    assert cli("ingest", "--db", db, "--sales", path).exit_code == 0
    before = snapshot(db)
    src = R.DATA / "retail_price_olist" / "retail_price.csv"
    res = cli("ingest", "--db", db, "--sales", src)
    assert res.exit_code == 2 and res.stdout == ""
    assert "Traceback" not in res.stderr
    found = ", ".join(raw.columns)
    assert res.stderr == (
        f"error: {src}: missing required columns 'item_id', 'market', "
        f"'date', 'price', 'quantity' (found: {found})\n"
    )
    assert_same(before, snapshot(db))


def test_olist_holidays_mapped_as_promo_are_rejected_by_row(cli, olist, tmp_path):
    from tests.conftest import assert_same, snapshot

    raw, path, db = olist
    assert cli("ingest", "--db", db, "--sales", path).exit_code == 0
    before = snapshot(db)
    # an easy mapping mistake: `holiday` counts holidays in the month (0-4), it is no 0/1 flag
    bad = tmp_path / "olist_promo.csv"
    pl.read_csv(path).with_columns(promo=raw["holiday"]).write_csv(bad)
    res = cli("ingest", "--db", db, "--sales", bad, "--replace")
    assert res.exit_code == 2
    wrong = raw.with_row_index("row", offset=1).filter(~pl.col("holiday").is_in([0, 1]))
    first = ", ".join(
        f"row {r} (line {r + 1}) value '{v}'"
        for r, v in wrong.select("row", "holiday").head(3).iter_rows()
    )
    assert res.stderr == (
        f"error: {bad}: column 'promo': must be 0 or 1 ({wrong.height} rows; first: {first})\n"
    )
    assert_same(before, snapshot(db))


def test_olist_loads_and_validate_reports_short_and_gappy_series(cli, olist):
    raw, path, db = olist
    res = cli("ingest", "--db", db, "--sales", path, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["loaded"] == {"sales": raw.height}
    res = cli("validate", "--db", db, "--json")
    assert res.exit_code == 0, res.stderr  # warnings only
    report = json.loads(res.stdout)
    assert report["ok"] and report["errors"] == []
    rules = {w["rule"]: w for w in report["warnings"]}
    months = raw.group_by("product_id").len()
    short = rules["series shorter than 8 weeks (too short to estimate reliably)"]
    assert short["count"] == months.filter(pl.col("len") < 8).height == 4
    gaps = rules["weekly series with gaps (missing weeks)"]
    assert gaps["count"] == months.filter(pl.col("len") > 1).height == 52


def test_hass_fractional_units_are_rejected_by_ingest_naming_rows(cli, tmp_path):
    """Scan volumes are fractional; the contract wants whole units: exit 2, rows named."""
    sales = R.hass().select("item_id", "market", "date", "price", "quantity")
    path = tmp_path / "hass_sales.csv"
    sales.write_csv(path)
    text = pl.read_csv(path, infer_schema=False).with_row_index("row", offset=1)
    frac = text.filter(pl.col("quantity").cast(pl.Float64) % 1 != 0)
    first = ", ".join(
        f"row {r} (line {r + 1}) value '{q}'"
        for r, q in frac.select("row", "quantity").head(3).iter_rows()
    )
    db = tmp_path / "hass.duckdb"
    res = cli("ingest", "--db", db, "--sales", path)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == (
        f"error: {path}: column 'quantity': must be a whole number "
        f"({frac.height} rows; first: {first})\n"
    )
    assert frac.height == 7370
    assert not db.exists()  # the failed ingest leaves no new database behind


def test_olist_validate_counts_series_not_rows(cli, olist):
    raw, path, db = olist
    assert cli("ingest", "--db", db, "--sales", path).exit_code == 0
    report = json.loads(cli("validate", "--db", db, "--json").stdout)
    gaps = next(w for w in report["warnings"] if w["rule"].startswith("weekly series with gaps"))
    assert gaps["count"] == 52
    assert "52 rows" not in gaps["message"]  # 52 series (product x market) of 676 rows
    assert "(52 series; first:" in gaps["message"] and gaps["unit"] == "series"


def test_olist_panel_after_ingest_is_product_month_dummy_ols(cli, olist):
    import pricelab.api as api

    raw, path, db = olist
    assert cli("ingest", "--db", db, "--sales", path).exit_code == 0
    run = api.estimate(db, model="panel", slope="common", by="market")
    ref = R.dummy_ols(
        np.log(raw["qty"].to_numpy().astype(float)),
        np.log(raw["unit_price"].to_numpy())[:, None],
        [raw["product_id"], raw["month_year"]],
        cluster=raw["product_id"],
    )
    row = run.elasticities.row(0, named=True)
    assert run.run_id
    assert row["elasticity"] == pytest.approx(ref.params[1], abs=1e-7)
    assert row["std_error"] == pytest.approx(ref.bse[1], rel=1e-6)
    # the data README: product + month FE -2.685
    assert row["elasticity"] == pytest.approx(-2.685, abs=5e-4)
