"""The results object returned by :func:`pricelab.elasticity.estimate`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from pricelab.errors import DataError, UsageError

from .design import YEAR_DAYS, control_frame

CONTRACT = ["item_id", "market", "elasticity", "std_error", "ci_low", "ci_high", "n_obs", "method"]
DIAGNOSTICS = [
    "n_zero",
    "price_variation",
    "fit_stat",
    "fit_stat_name",
    "first_stage_f",
    "first_stage_f_robust",
    "flags",
]

# -- named flag sets ---------------------------------------------------------------------
# The meanings of "flagged", kept apart on purpose; every name is one of
# :data:`pricelab.elasticity.groupfit.FLAG_NAMES` (see ElasticityResults' Notes), and a
# ``flags`` column is matched against a set with :func:`has_any_flag`, never a regex.

#: Display: groups that ask for an analyst's attention when estimates are shown
#: (``pricelab estimate``'s flagged table and ``share_flagged``, the report's elasticity
#: section). ``shrunk``, ``not_pooled`` and ``separated`` (refitted) are informational.
DISPLAY_FLAGS: tuple[str, ...] = (
    "positive",
    "inelastic",
    "no_price_variation",
    "absorbed",
    "few_obs",
    "weak_instrument",
    "failed",
    "no_sales",
)
#: Promotion gate: estimates a candidate run should not get worse on than production
#: (:mod:`pricelab.registry.gate`, and the ``share_flagged`` MLflow metric).
#: elasticities beyond this magnitude are absurd (weak instruments, separated fits): the
#: report lists them and does not draw them
ABSURD_ELASTICITY = 50.0
GATE_FLAGS: tuple[str, ...] = ("positive", "no_price_variation", "absorbed", "weak_instrument")
#: Monitor fit check: groups whose data or fit failed (``pricelab monitor``'s default
#: ``fit.flags``).
MONITOR_FIT_FLAGS: tuple[str, ...] = (
    "failed",
    "no_sales",
    "no_price_variation",
    "absorbed",
    "few_obs",
    "weak_instrument",
)
#: No usable per-group fit: the seasonality adjustment of baselines keeps the plain average
#: for these groups (:mod:`pricelab.demand.season`).
UNFIT_FLAGS: tuple[str, ...] = ("failed", "few_obs", "no_sales")


def has_any_flag(names: Iterable[str], column: str | pl.Expr = "flags") -> pl.Expr:
    """Boolean expression: the group's flags include any of ``names``.

    Parameters
    ----------
    names:
        Flag names, e.g. :data:`DISPLAY_FLAGS`; matched as whole flags, so a name that is a
        substring of another flag (``sales`` in ``no_sales``) does not match it.
    column:
        The comma-separated ``flags`` column (name or expression); null counts as no flag.

    Returns
    -------
    polars.Expr
        True where at least one of the comma-separated flags (spaces around a comma are
        ignored) is in ``names``; False for an empty or null ``flags``.
    """
    col = pl.col(column) if isinstance(column, str) else column
    wanted = list(dict.fromkeys(names))
    return (
        col.fill_null("")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().is_in(wanted))
        .list.any()
    )


class ElasticityResults:
    """Per-group elasticities with uncertainty, diagnostics and the fitted demand model.

    Parameters
    ----------
    table:
        One row per group: the ``by`` columns, the contract columns and diagnostics.
    params:
        One row per group: the ``by`` columns, ``intercept``, ``log_price`` and one
        column per control, plus ``smearing`` (multiplier turning ``exp(x'b)`` into
        expected weekly quantity).
    model, parameters:
        Model name and the options used (also what :meth:`predict` needs; ``end`` is the
        last week of the fit window).

    Notes
    -----
    ``flags`` (comma-separated) names what a pricing analyst must know about a group:
    ``positive`` (e >= 0), ``inelastic`` (-1 < e < 0), ``no_price_variation``,
    ``absorbed`` (``panel``/``ols`` with fixed effects: the price varies, but the fixed
    effects absorb all of its variation), ``few_obs`` (fewer than ``min_obs`` weeks),
    ``no_sales``, ``weak_instrument``
    (robust first-stage F < 10, ``first_stage_f_robust``), ``shrunk`` (the hierarchical prior got at least a quarter of the
    weight), ``not_pooled`` (``hierarchical``: no pooling level had enough usable estimates,
    e.g. two items in all, so the group keeps its own Poisson estimate), ``failed`` (no usable fit: NaN elasticity) and ``separated`` (``poisson`` /
    ``hierarchical``: the Poisson fit was quasi-separated, its fitted means collapsing to 0
    on some zero weeks; refitted without those weeks when a control such as ``promo``
    caused it, else ``failed``; see :mod:`pricelab.elasticity.sparse`). In ``poisson`` and
    ``hierarchical`` fits, the nuisance controls a sparse group cannot support (too few
    selling weeks per parameter, or a variance inflation above 10) are left out: their
    coefficients in :attr:`params` are NaN and count as 0 in :meth:`predict`.
    """

    def __init__(
        self, table: pl.DataFrame, params: pl.DataFrame, model: str, parameters: dict[str, Any]
    ) -> None:
        self._table = table
        self._params = params
        self._model = model
        self._parameters = dict(parameters)

    @property
    def elasticities(self) -> pl.DataFrame:
        """Contract columns plus ``n_zero, price_variation, fit_stat, first_stage_f, first_stage_f_robust, flags``."""
        return self._table

    @property
    def params(self) -> pl.DataFrame:
        """Every coefficient per group (intercept, log_price, controls) and ``smearing``."""
        return self._params

    @property
    def model(self) -> str:
        """The model name (``ols``, ``poisson``, ``panel``, ``hierarchical``, ``iv``)."""
        return self._model

    @property
    def parameters(self) -> dict[str, Any]:
        """The options the estimate was made with."""
        return dict(self._parameters)

    @property
    def by(self) -> list[str]:
        """The group columns."""
        return list(self._parameters.get("by") or [])

    def conf_int(self, alpha: float | None = None) -> pl.DataFrame:
        """Normal-approximation interval per group at level ``1 - alpha``.

        Without ``alpha`` the stored ``ci_low, ci_high`` (level chosen at fit time) are returned.
        """
        keys = [c for c in self.by if c in self._table.columns]
        if alpha is None:
            return self._table.select([*keys, "elasticity", "ci_low", "ci_high"])
        if not 0 < alpha < 1:
            raise UsageError(f"alpha must be in (0, 1), got {alpha}")
        from .robust import normal_quantile

        z = normal_quantile(1 - alpha / 2)
        return self._table.select(
            [
                *keys,
                "elasticity",
                (pl.col("elasticity") - z * pl.col("std_error")).alias("ci_low"),
                (pl.col("elasticity") + z * pl.col("std_error")).alias("ci_high"),
            ]
        )

    def to_polars(self) -> pl.DataFrame:
        """The elasticities table (a copy is not needed: polars frames are immutable)."""
        return self._table

    @property
    def summary(self) -> str:
        """Readable text: model, counts, distribution of estimates and flags."""
        t = self._table
        e = t["elasticity"].drop_nans().drop_nulls()
        lines = [
            f"pricelab elasticity estimates — model: {self._model}",
            f"groups: {t.height}  (by: {', '.join(self.by) or 'pooled'})",
            f"estimated: {e.len()}  missing (NaN): {t.height - e.len()}",
        ]
        if e.len():
            qs = np.quantile(e.to_numpy(), [0.1, 0.25, 0.5, 0.75, 0.9])
            lines.append(
                "elasticity quantiles p10/p25/p50/p75/p90: " + " / ".join(f"{v:.3f}" for v in qs)
            )
            med_se = float(np.nanmedian(t["std_error"].to_numpy()))
            lines.append(f"median std error: {med_se:.3f}")
        flags = (
            t.select(pl.col("flags").str.split(","))
            .explode("flags")
            .filter(pl.col("flags") != "")
            .group_by("flags")
            .len()
            .sort("flags")
        )
        for row in flags.iter_rows():
            lines.append(f"  flag {row[0]}: {row[1]}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def __repr__(self) -> str:
        return f"<ElasticityResults model={self._model} groups={self._table.height}>"

    def predict(self, sales: pl.DataFrame) -> pl.DataFrame:
        """Expected weekly quantity for the rows of ``sales`` at their prices.

        ``sales`` needs the ``by`` columns, ``price``, ``date`` (for seasonal/trend
        controls) and any control column used at fit time. Coefficients of controls
        that were dropped for a group count as 0; a group without an estimate gives null.
        The ``trend`` is not extrapolated: outside the fit window it is held at its
        value at the window's first or last week (``parameters["end"]``), so a forecast
        uses the level the series had when the data ended rather than a straight line
        continued into the future. Returns ``sales`` with an ``expected_quantity`` column.
        """
        by = self.by
        missing = [c for c in [*by, "price"] if c not in sales.columns]
        if missing:
            raise DataError(f"predict: sales lacks column(s) {', '.join(missing)}")
        origin = self._parameters.get("origin")
        origin = dt.date.fromisoformat(origin) if isinstance(origin, str) else origin
        controls = list(self._parameters.get("controls") or [])
        df = sales.with_row_index("_row")
        df, cols = control_frame(df, controls, origin)
        end = self._parameters.get("end")
        if "_c_trend" in cols and isinstance(end, str) and origin is not None:
            t_end = (dt.date.fromisoformat(end) - origin).days / YEAR_DAYS
            df = df.with_columns(pl.col("_c_trend").clip(0.0, t_end))
        pcols = [c for c in self._params.columns if c not in by]
        renamed = self._params.rename({c: f"_b_{c}" for c in pcols})
        df = df.join(renamed, on=by, how="left") if by else df.join(renamed, how="cross")
        eta = pl.col("_b_intercept") + pl.col("_b_log_price") * pl.col("price").log()
        for c in cols:
            name = f"_b_{c[3:]}"
            if name in df.columns:
                eta = eta + pl.col(name).fill_nan(0.0).fill_null(0.0) * pl.col(c).fill_null(0.0)
        pred = (eta.exp() * pl.col("_b_smearing")).fill_nan(None)
        return (
            df.with_columns(pred.alias("expected_quantity"))
            .sort("_row")
            .select([*sales.columns, "expected_quantity"])
        )
