"""Backtests: fit before a cutoff, predict after it at the prices actually charged, score.

For each origin (``cutoffs`` origins spaced ``horizon_weeks`` apart, the last one at
``cutoff``), every model is fitted on the weeks before the origin with
:func:`pricelab.elasticity.estimate` and predicts the weekly units of the following
``horizon_weeks`` weeks with :meth:`ElasticityResults.predict` given the real prices and
promotions. A naive forecast with no price effect (each item × market's average of the last
``naive_weeks`` weeks) is scored next to them. Rows scored are the test weeks of groups
that sold in the naive window, so every method is scored on the same rows; a model with no
estimate for a group falls back to the naive forecast there (counted in ``n_fallback``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import polars as pl

from pricelab.configfile import MAX_WEEKS
from pricelab.errors import DataError, UsageError

NAIVE = "naive"
KEYS = ["item_id", "market"]
SCORE_COLUMNS = [
    "cutoff",
    "model",
    "rank",
    "n_groups",
    "n_rows",
    "n_fallback",
    "actual_units",
    "predicted_units",
    "wape",
    "bias_pct",
    "deviance",
    "rmse",
    "coverage_90",
    "dispersion",
]
RANK_BY = ("deviance", "wape", "rmse")


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Mean Poisson deviance ``2 (y log(y / mu) - (y - mu))``: a proper score for a mean."""
    mu = np.maximum(mu, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2.0 * (t - (y - mu)))) if y.size else float("nan")


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"cutoff {value!r} is not a date; use YYYY-MM-DD") from None


def dispersion(frame: pl.DataFrame, mu: np.ndarray) -> float:
    """Variance-to-mean ratio of weekly units around ``mu``, at least 1.

    The Pearson statistic ``mean((y - mu)^2 / mu)`` per item × market (rows with
    ``mu > 0``), then the median over groups, so that a few badly fitted groups do not
    decide the width of every interval.
    """
    df = frame.select(KEYS).with_columns(
        pl.Series("y", frame["quantity"].to_numpy().astype(float)), pl.Series("mu", mu)
    )
    df = df.filter(pl.col("mu").is_finite() & (pl.col("mu") > 0))
    if df.height == 0:
        return 1.0
    per = df.group_by(KEYS).agg(((pl.col("y") - pl.col("mu")) ** 2 / pl.col("mu")).mean())
    return max(1.0, float(cast(float, per[per.columns[-1]].median())))  # non-empty, numeric


def interval(mu: np.ndarray, phi: float, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval of a count with mean ``mu`` and variance ``phi * mu``.

    Poisson when ``phi == 1``, else negative binomial with ``n = mu / (phi - 1)``,
    ``p = 1 / phi`` (mean ``mu``, variance ``phi * mu``).
    """
    from scipy import stats  # here: importing scipy.stats costs simulate's start-up ~0.5 s

    a = (1.0 - level) / 2.0
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    poisson = phi <= 1.0 + 1e-9
    dist = stats.poisson(mu) if poisson else stats.nbinom(mu / (phi - 1.0), 1.0 / phi)
    return dist.ppf(a), dist.ppf(1.0 - a)


@dataclass
class BacktestResult:
    """Scores per model and origin, and the predictions they came from.

    Attributes
    ----------
    scores : polars.DataFrame
        One row per origin × model (``cutoff`` an ISO date) and per model over all origins
        (``cutoff`` = ``all``): ``rank`` (by ``rank_by`` within the origin), ``n_groups,
        n_rows, n_fallback, actual_units, predicted_units, wape, bias_pct`` (predicted over
        actual minus 1, in percent), ``deviance`` (mean Poisson deviance), ``rmse``,
        ``coverage_90`` (share of weeks inside the 90% predictive
        interval) and ``dispersion`` (variance / mean used for that interval).
    predictions : polars.DataFrame
        ``cutoff, model, item_id, market, date, price, quantity, predicted, low, high``.
    """

    scores: pl.DataFrame
    predictions: pl.DataFrame
    parameters: dict[str, Any]
    run_id: str | None = None

    def best(self) -> str:
        """The method ranked first over all origins."""
        return str(self.overall()["model"][0])

    def overall(self) -> pl.DataFrame:
        """Scores pooled over every origin, best first."""
        return self.scores.filter(pl.col("cutoff") == "all").sort("rank")

    @property
    def summary(self) -> str:
        """Readable text: the pooled score of each model."""
        p = self.parameters
        lines = [
            f"Backtest: {len(p['cutoffs'])} origin(s) {', '.join(p['cutoffs'])}, horizon "
            f"{p['horizon_weeks']} weeks, naive = last {p['naive_weeks']} weeks average"
        ]
        for r in self.overall().iter_rows(named=True):
            lines.append(
                f"  {r['rank']}. {r['model']}: deviance {r['deviance']:.3f}, "
                f"WAPE {r['wape']:.3f}, bias "
                f"{r['bias_pct']:+.1f}%, 90% coverage {r['coverage_90']:.2f}"
                + (f", {r['n_fallback']} fallback rows" if r["n_fallback"] else "")
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for ``--json``)."""
        return {
            "run_id": self.run_id,
            "parameters": self.parameters,
            "best": self.best(),
            "scores": self.scores.to_dicts(),
        }


def forecast_scores(frame: pl.DataFrame, phi: float) -> dict[str, Any]:
    """Scores of a forecast frame (``quantity, predicted, low, high, fallback``): rows, units,
    WAPE, bias, Poisson deviance, RMSE, 90% interval coverage and the dispersion ``phi``."""
    y = frame["quantity"].to_numpy().astype(float)
    f = frame["predicted"].to_numpy().astype(float)
    lo, hi = frame["low"].to_numpy(), frame["high"].to_numpy()
    tot = float(y.sum())
    return {
        "n_rows": frame.height,
        "n_fallback": int(frame["fallback"].sum()),
        "actual_units": tot,
        "predicted_units": float(f.sum()),
        "wape": float(np.abs(y - f).sum() / tot) if tot else float("nan"),
        "bias_pct": 100.0 * (float(f.sum()) / tot - 1.0) if tot else float("nan"),
        "deviance": poisson_deviance(y, f),
        "rmse": float(np.sqrt(np.mean((y - f) ** 2))) if y.size else float("nan"),
        "coverage_90": float(np.mean((y >= lo) & (y <= hi))) if y.size else float("nan"),
        "dispersion": phi,
    }


def _score(frame: pl.DataFrame, cutoff: str, model: str, phi: float) -> dict[str, Any]:
    n_groups = frame.select(KEYS).n_unique()
    return {"cutoff": cutoff, "model": model, "n_groups": n_groups, **forecast_scores(frame, phi)}


def _origin(
    sales: pl.DataFrame,
    items: pl.DataFrame | None,
    origin: dt.date,
    horizon: int,
    models: Sequence[str],
    naive_weeks: int,
    options: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[pl.DataFrame]]:
    from pricelab.elasticity import estimate

    end = origin + dt.timedelta(weeks=horizon)
    train = sales.filter(pl.col("date") < origin)
    test = sales.filter((pl.col("date") >= origin) & (pl.col("date") < end))
    label = origin.isoformat()
    if train.height == 0:
        raise UsageError(f"cutoff {label} leaves no history before it to fit on")
    recent = train.filter(pl.col("date") >= origin - dt.timedelta(weeks=naive_weeks))
    naive = recent.group_by(KEYS).agg(pl.col("quantity").mean().alias("naive"))
    test = test.join(naive, on=KEYS, how="inner").sort([*KEYS, "date"])
    if test.height == 0:
        raise UsageError(
            f"cutoff {label}: no sales in the {horizon} weeks after it for items "
            f"that sold in the {naive_weeks} weeks before it"
        )
    rfit = recent.join(naive, on=KEYS)
    phi_naive = dispersion(rfit, rfit["naive"].to_numpy().astype(float))
    scores, preds = [], []

    def add(model: str, pred: np.ndarray, fallback: np.ndarray, phi: float) -> None:
        lo, hi = interval(pred, phi)
        frame = test.select(*KEYS, "date", "price", "quantity").with_columns(
            pl.lit(label).alias("cutoff"),
            pl.lit(model).alias("model"),
            pl.Series("predicted", pred),
            pl.Series("low", lo),
            pl.Series("high", hi),
            pl.Series("fallback", fallback),
        )
        scores.append(_score(frame, label, model, phi))
        preds.append(frame)

    naive_pred = test["naive"].to_numpy().astype(float)
    add(NAIVE, naive_pred, np.zeros(test.height, dtype=bool), phi_naive)
    for model in models:
        res = estimate(train, model=model, items=items, **options)
        pred = res.predict(test.drop("naive"))["expected_quantity"].to_numpy().astype(float)
        fb = ~np.isfinite(pred)
        pred = np.where(fb, naive_pred, pred)
        fit = res.predict(train)
        phi = dispersion(fit, fit["expected_quantity"].to_numpy().astype(float))
        add(model, pred, fb, phi)
    return scores, preds


def backtest(
    sales: pl.DataFrame,
    *,
    cutoff: str | dt.date,
    horizon_weeks: int = 8,
    models: Sequence[str] = ("poisson", "hierarchical"),
    cutoffs: int = 1,
    items: pl.DataFrame | None = None,
    naive_weeks: int = 8,
    estimate_options: dict[str, Any] | None = None,
    rank_by: str = "deviance",
) -> BacktestResult:
    """Score demand models on history they did not see.

    Parameters
    ----------
    sales : polars.DataFrame
        Weekly sales ``item_id, market, date, price, quantity`` (+ ``promo``, controls).
    cutoff : str or date
        The last origin: models see the weeks before it and predict the weeks from it on.
    horizon_weeks : int
        Weeks predicted after each origin.
    models : sequence of str
        Models of :func:`pricelab.elasticity.estimate` to compare.
    cutoffs : int
        Number of origins (rolling origin): ``cutoff``, ``cutoff - horizon_weeks``, ...
    items : polars.DataFrame, optional
        Item attributes (pooling level of ``hierarchical`` and ``panel``).
    naive_weeks : int
        Window of the naive baseline (average weekly units, no price effect).
    estimate_options : dict, optional
        Further keyword arguments of ``estimate`` (e.g. ``controls``).
    rank_by : {"deviance", "wape", "rmse"}
        Score that ranks the methods. The default, mean Poisson deviance, is a proper
        score for an expected count; WAPE is not (on low weekly counts it rewards
        forecasts biased towards zero), so a model can win on WAPE by under-forecasting.

    Returns
    -------
    BacktestResult

    Raises
    ------
    UsageError
        Bad cutoff, an origin without history before it or sales after it, an unknown model.
    DataError
        ``sales`` lacks a required column.
    """
    from pricelab.elasticity import MODELS, not_per_group

    origin = _as_date(cutoff)
    for name, v in (
        ("horizon_weeks", horizon_weeks),
        ("cutoffs", cutoffs),
        ("naive_weeks", naive_weeks),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_WEEKS:
            raise UsageError(f"{name} must be a whole number from 1 to {MAX_WEEKS}, got {v!r}")
    if rank_by not in RANK_BY:
        raise UsageError(f"unknown rank_by '{rank_by}'; choose from {', '.join(RANK_BY)}")
    models = list(dict.fromkeys(models))
    for m in models:
        if m not in MODELS:
            raise not_per_group(m) or UsageError(
                f"unknown model '{m}'; choose from {', '.join(MODELS)}"
            )
    missing = [c for c in [*KEYS, "date", "price", "quantity"] if c not in sales.columns]
    if missing:
        raise DataError(f"backtest: sales lacks column(s) {', '.join(missing)}")
    if sales.schema["date"] != pl.Date:
        sales = sales.with_columns(pl.col("date").cast(pl.Date))
    origins = [origin - dt.timedelta(weeks=horizon_weeks * k) for k in range(cutoffs)][::-1]
    scores: list[dict[str, Any]] = []
    preds: list[pl.DataFrame] = []
    for o in origins:
        s, p = _origin(
            sales, items, o, horizon_weeks, models, naive_weeks, dict(estimate_options or {})
        )
        scores += s
        preds += p
    predictions = pl.concat(preds)
    for method in [NAIVE, *models]:
        sub = predictions.filter(pl.col("model") == method)
        phis = [s["dispersion"] for s in scores if s["model"] == method]
        scores.append(_score(sub, "all", method, float(np.mean(phis))))
    table = pl.DataFrame(scores).with_columns(
        pl.col(rank_by).rank("ordinal").over("cutoff").cast(pl.Int64).alias("rank")
    )
    params = {
        "cutoff": origin.isoformat(),
        "cutoffs": [o.isoformat() for o in origins],
        "horizon_weeks": horizon_weeks,
        "models": models,
        "naive_weeks": naive_weeks,
        "estimate_options": dict(estimate_options or {}),
        "rank_by": rank_by,
    }
    return BacktestResult(table.select(SCORE_COLUMNS), predictions.drop("fallback"), params)
