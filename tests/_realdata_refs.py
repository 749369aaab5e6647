"""Loaders and statsmodels references for tests/test_realdata_more.py.

The data live in ``../shared/data`` (several folders are GPL: read there, never copied into
the repository). Each loader maps one public dataset to the sales contract
(``item_id, market, date, price, quantity`` + numeric controls); each reference fits the
same specification with statsmodels (dummy-variable OLS, GLM, IV2SLS) or scipy quadrature,
independently of pricelab's batched kernels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import integrate, stats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need(folder: str, name: str) -> Path:
    """Path of ``DATA/folder/name``; skip the test when it is absent."""
    path = DATA / folder / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


# -- loaders: public data -> sales contract ---------------------------------------------
def cigar() -> pl.DataFrame:
    """Baltagi's state × year cigarette panel; real price, real income, neighbour price."""
    raw = pl.read_csv(need("cigar_baltagi", "cigar.csv"))
    return raw.with_columns(
        item_id=pl.col("state").cast(pl.String),
        market=pl.lit("US"),
        date=pl.date(pl.col("year"), 1, 1),
        price=pl.col("price") / pl.col("cpi"),
        quantity=pl.col("sales"),
        ly=(pl.col("ndi") / pl.col("cpi")).log(),
        lpn=(pl.col("pimin") / pl.col("cpi")).log(),
    )


def tuna() -> pl.DataFrame:
    """Dominick's canned tuna, brand × week; wholesale price as ``unit_cost``."""
    raw = pl.read_csv(need("tuna_dominicks", "tuna_long.csv"))
    return raw.with_columns(
        item_id=pl.col("brand").cast(pl.String),
        market=pl.lit("chicago"),
        date=pl.lit(dt.date(1989, 9, 11)) + pl.duration(weeks=pl.col("week")),
        quantity=pl.col("units"),
        unit_cost=pl.col("wholesale_price"),
        lcust=pl.col("fullcust").log(),
    )


def hass() -> pl.DataFrame:
    """Hass avocado scan data, region × week (the region is the market)."""
    raw = pl.read_csv(need("hass_avocado", "hass.csv"), try_parse_dates=True)
    return raw.with_columns(
        item_id=pl.lit("hass"),
        market=pl.col("region"),
        price=pl.col("asp"),
        quantity=pl.col("units"),
    )


def cheese() -> pl.DataFrame:
    """Borden sliced cheese, retailer × week (no calendar: weeks numbered by ``obs_seq``)."""
    raw = pl.read_csv(need("cheese_borden", "cheese.csv"))
    return raw.rename({"market": "city"}).with_columns(
        item_id=pl.col("RETAILER"),
        market=pl.lit("US"),
        price=pl.col("PRICE"),
        quantity=pl.col("VOLUME"),
        date=pl.lit(dt.date(1990, 1, 1)) + pl.duration(weeks=pl.col("obs_seq") - 1),
    )


def beer() -> pl.DataFrame:
    """Dominick's beer (Taddy's MBA file), UPC × week; price per 12 oz."""
    raw = pl.read_csv(need("dominicks_beer", "beer_mba_sales.csv"))
    return raw.with_columns(
        item_id=pl.col("upc").cast(pl.String),
        market=pl.lit("chicago"),
        price=12 * pl.col("price_per_oz"),
        quantity=pl.col("units"),
        date=pl.lit(dt.date(1989, 9, 14)) + pl.duration(weeks=pl.col("week")),
    )


# -- statsmodels references ---------------------------------------------------------------
def codes(values: pl.Series | np.ndarray) -> np.ndarray:
    """Integer level codes 0..L-1 (sorted levels)."""
    return np.unique(np.asarray(values), return_inverse=True)[1].ravel()


def dummies(values: pl.Series | np.ndarray) -> np.ndarray:
    """Dummy columns for every level but the first."""
    c = codes(values)
    return np.eye(int(c.max()) + 1)[c][:, 1:]


def dummy_ols(
    y: np.ndarray,
    x: np.ndarray,
    fes: list[pl.Series],
    *,
    cov: str = "HC1",
    cluster: pl.Series | None = None,
) -> sm.regression.linear_model.RegressionResults:
    """OLS of ``y`` on ``[1, x, dummies of each fe]``; ``x``'s coefficients are params[1:1+k]."""
    X = np.column_stack([np.ones(y.size), x, *[dummies(f) for f in fes]])
    if cluster is not None:
        return sm.OLS(y, X).fit(
            method="qr", cov_type="cluster", cov_kwds={"groups": codes(cluster)}
        )
    return sm.OLS(y, X).fit(method="qr", cov_type=cov)


def groups(df: pl.DataFrame, key: str) -> Iterator[tuple[str, pl.DataFrame]]:
    """``(key value, rows)`` per group, in sorted key order."""
    for value in sorted(df[key].unique().to_list()):
        yield value, df.filter(pl.col(key) == value)


def with_const(*cols: np.ndarray) -> np.ndarray:
    """``[1, cols...]``, leaving out columns that are constant (rank-deficient groups)."""
    kept = [np.asarray(c, dtype=float) for c in cols if np.ptp(np.asarray(c)) > 0]
    return np.column_stack([np.ones(len(cols[0])), *kept])


def fourier_trend(g: pl.DataFrame, first: dt.date) -> list[np.ndarray]:
    """pricelab's documented default controls (no promo): sin/cos of 2 pi day-of-year / 365.25
    and years since ``first``."""
    angle = 2 * np.pi * g["date"].dt.ordinal_day().to_numpy() / 365.25
    years = (g["date"] - first).dt.total_days().to_numpy() / 365.25
    return [np.sin(angle), np.cos(angle), years]


def per_group(
    df: pl.DataFrame, key: str, fit: Callable[[pl.DataFrame], tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """``fit(rows) -> (slope, se)`` per group."""
    return {k: fit(g) for k, g in groups(df, key)}


def poisson_glm(
    df: pl.DataFrame, key: str, design: Callable[[pl.DataFrame], np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per-group Poisson GLM of ``quantity`` on ``design(rows)``.

    Returns per group the price slope ``e`` (column 1), its HC0 and model-based variances,
    ``n``, ``p`` (rows, columns) for the n / (n - p) factor of HC1, and with dates the
    slope's HC0 influence per row (``a``, whose squares sum to the HC0 variance) and the
    row's week (``week``, days since 1970 // 7).
    """
    out: dict[str, dict[str, Any]] = {}
    for k, g in groups(df, key):
        X = design(g)
        y = g["quantity"].to_numpy().astype(float)
        model = sm.GLM(y, X, family=sm.families.Poisson())
        robust = model.fit(cov_type="HC0", tol=1e-13)
        plain = model.fit(tol=1e-13)
        out[k] = {
            "e": float(robust.params[1]),
            "hc0": float(robust.bse[1]) ** 2,
            "model": float(plain.bse[1]) ** 2,
            "n": g.height,
            "p": X.shape[1],
        }
        if "date" in g.columns:
            mu = plain.mu
            bread = np.linalg.inv(X.T @ (mu[:, None] * X))
            out[k]["a"] = (X @ bread[:, 1]) * (y - mu)
            out[k]["week"] = g["date"].to_physical().to_numpy() // 7
    return out


def shared_covariance(
    fits: dict[str, dict[str, Any]], size: int = 13, first: int | None = None
) -> np.ndarray:
    """Cross-group sampling covariances of one level's slopes (zero diagonal), from the
    rows' influences, two-way clustered by calendar weeks counted from the first week of
    all groups (or week ``first``: the data set's first week): blocks of ``size`` weeks,
    plus (over more than 52 weeks) weeks of the year minus single weeks, times
    ``c/(c-1) (t_(c-1)(0.975) / z_0.975)²`` (``c`` the fewer non-empty clusters of the two
    ways), as pricelab.elasticity.robust documents; ``fits`` are :func:`poisson_glm` results."""
    rows = [fits[k] for k in sorted(fits)]
    if first is None:
        first = min(int(r["week"].min()) for r in rows)
    nw = max(int(r["week"].max()) - first for r in rows) + 1
    ways = [(size, nw // size + 1, 1.0)]
    if nw > 52:
        ways += [(None, 52, 1.0), (1, nw, -1.0)]
    C = np.zeros((len(rows), len(rows)))
    counts = []
    for step, m, sign in ways:
        A = np.array(
            [
                np.bincount(
                    (r["week"] - first) % 52 if step is None else (r["week"] - first) // step,
                    weights=r["a"],
                    minlength=m,
                )
                for r in rows
            ]
        )
        C += sign * A @ A.T
        counts.append(np.count_nonzero(np.abs(A).sum(axis=0)))
    c = min(counts[:2])
    C *= c / (c - 1) * (stats.t.ppf(0.975, c - 1) / stats.norm.ppf(0.975)) ** 2
    return C - np.diag(np.diag(C))


def cluster_variance(a: np.ndarray, week: np.ndarray, size: int = 13) -> float:
    """``se="cluster"`` of one group by explicit cluster sums, as pricelab.elasticity.robust
    documents: HC3 (``sum a²``) or, if larger, ``c/(c-1) sum_blocks (sum a)²`` over blocks
    of ``size`` weeks from the first week, two-way when the weeks span more than 52 (plus
    ``c/(c-1) sum_(week of year) (sum a)²``, minus ``sum a²``)."""
    rel = week - week.min()
    hc3 = float((a * a).sum())

    def clustered(codes: np.ndarray) -> float:
        sums = np.array([a[codes == c].sum() for c in np.unique(codes)])
        return sums.size / (sums.size - 1) * float((sums**2).sum())

    v = clustered(rel // size)
    if rel.max() >= 52:
        v += clustered(rel % 52) - hc3
    return max(hc3, v)


def pooled_variances(fits: dict[str, dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and the sampling variances pricelab.elasticity.hierarchical documents.

    Each group's own robust (here HC1) variance, floored at its model-based variance;
    ``fits`` are one level's :func:`poisson_glm` results (sorted by key).
    """
    rows = [fits[k] for k in sorted(fits)]
    e = np.array([r["e"] for r in rows])
    model = np.array([r["model"] for r in rows])
    hc1 = np.array([r["hc0"] * r["n"] / (r["n"] - r["p"]) for r in rows])
    return e, np.maximum(hc1, model)


def iv2sls(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, w: np.ndarray
) -> tuple[float, float, float]:
    """statsmodels IV2SLS of ``y`` on ``[1, x, w]`` with instruments ``[1, z, w]``.

    Returns the slope on ``x``, its (homoskedastic) SE and the first-stage F of ``z``
    (nested-model F test of the first stage with and without ``z``).
    """
    X = np.column_stack([np.ones(y.size), x, w])
    Z = np.column_stack([np.ones(y.size), z, w])
    from statsmodels.sandbox.regression.gmm import IV2SLS

    fit = IV2SLS(y, X, Z).fit()
    full = sm.OLS(x, Z).fit()
    restricted = sm.OLS(x, np.column_stack([np.ones(y.size), w])).fit()
    f_value = full.compare_f_test(restricted)[0]
    return float(fit.params[1]), float(fit.bse[1]), float(f_value)


def posterior_by_quadrature(
    e: np.ndarray, v: np.ndarray, upper: float = np.inf, cross: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean, sd and prior weight ``E[1 - B_j]`` of each ``theta_j``.

    Normal hierarchical model ``e_j ~ N(theta_j, v_j)``, ``theta_j ~ N(mu, tau^2)``, flat
    priors on ``mu`` and ``tau >= 0`` (Gelman et al., *Bayesian Data Analysis*, 3rd ed.,
    section 5.4: eqs. 5.17-5.21 for ``p(tau | e)`` and the conditional moments), integrated
    over ``tau`` in ``[0, upper)`` (default: to infinity) by adaptive quadrature (scipy
    ``quad_vec``). ``cross`` (``n x n``, zero diagonal): sampling covariances between the
    estimates (:func:`shared_covariance`); at each ``tau`` the conditional variance then adds
    ``max((1 - B_j)² w'Cw / (sum w)² + 2 B_j (1 - B_j) (Cw)_j / sum w, 0)``, the documented
    correlated-errors form (never below independence).
    """
    C = np.zeros((e.size, e.size)) if cross is None else cross

    def parts(tau: float) -> tuple[float, np.ndarray, np.ndarray, float, float]:
        w = 1.0 / (v + tau * tau)
        mu = float((w * e).sum() / w.sum())
        log_p = -0.5 * (np.log(w.sum()) + (w * (e - mu) ** 2).sum() - np.log(w).sum())
        b = tau * tau / (tau * tau + v)
        return log_p, b, mu + b * (e - mu), float(w.sum()), mu

    grid = np.linspace(0.0, 10.0 * float(np.std(e)) + 1.0, 2001)
    peak = max(parts(t)[0] for t in grid)

    def integrand(tau: float) -> np.ndarray:
        log_p, b, m, sw, _ = parts(tau)
        dens = np.exp(log_p - peak)
        om = (1.0 / (v + tau * tau)) / sw
        extra = (1 - b) ** 2 * (om @ C @ om) + 2 * b * (1 - b) * (C @ om)
        second = b * v + (1 - b) ** 2 / sw + np.maximum(extra, 0.0) + m * m
        return dens * np.concatenate([[1.0], m, second, 1 - b])

    total = integrate.quad_vec(integrand, 0.0, upper, epsrel=1e-11, epsabs=0.0)[0]
    n = e.size
    mean = total[1 : 1 + n] / total[0]
    second = total[1 + n : 1 + 2 * n] / total[0]
    weight = total[1 + 2 * n :] / total[0]
    return mean, np.sqrt(second - mean**2), weight


# -- the split-half calibration datasets (pricelab.elasticity.calibration) ---------------
def oj_stores() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Dominick's orange juice, brand × store × week, as examples/oj_to_contract.py writes it
    (price per pack, promo = feature ad); items: one category, the brand name as brand."""
    raw = pl.read_csv(need("dominicks_oj", "oj_long.csv"))
    sales = raw.select(
        pl.col("brand_name").alias("item_id"),
        pl.format("S{}", pl.col("store").cast(pl.String).str.zfill(3)).alias("market"),
        (pl.lit(dt.date(1989, 9, 11)) + pl.duration(weeks=pl.col("week") - 1)).alias("date"),
        pl.col("price_per_pack").alias("price"),
        pl.col("units").cast(pl.Int64).alias("quantity"),
        (pl.col("feat") > 0).cast(pl.Int8).alias("promo"),
        pl.col("deal").cast(pl.Int8),
    )
    items = (
        sales.select("item_id")
        .unique()
        .sort("item_id")
        .with_columns(category=pl.lit("orange juice"), brand=pl.col("item_id"))
    )
    return sales, items


def calibration_sets() -> dict[str, tuple[pl.DataFrame, pl.DataFrame | None]]:
    """``name -> (sales, items)``: orange juice (913 brand × store groups), avocados (45
    regions; units rounded to integers) and tuna (7 brands; promo = any sale activity)."""
    hass_sales = hass().select(
        "item_id", "market", "date", "price", pl.col("quantity").round().cast(pl.Int64)
    )
    tuna_sales = tuna().select(
        pl.col("brand_name").alias("item_id"),
        "market",
        "date",
        "price",
        pl.col("quantity").cast(pl.Int64),
        promo=(pl.col("nsale") > 0).cast(pl.Int8),
    )
    return {"oj": oj_stores(), "avocado": (hass_sales, None), "tuna": (tuna_sales, None)}
