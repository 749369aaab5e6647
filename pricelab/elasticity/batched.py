"""The batched estimators on one partition of whole groups: what an engine calls.

An engine (:mod:`pricelab.engines`) splits the sales into partitions that each hold
whole groups, applies these functions to every partition and combines the results;
it needs nothing else from the estimators. Everything takes and returns polars frames
(or plain arrays), so the same calls run in this process, in a Spark ``mapInArrow``
task or in a test.

* Per-group models (``ols``, ``poisson``, ``iv``; ``panel`` on whole pooling levels):
  :func:`fit_groups` fits a partition and puts the ``trend`` control's origin where
  the whole data set starts.
* ``hierarchical`` has a per-group stage and a global one: :func:`group_stats` fits
  the per-group Poisson models of a partition and returns one row per group of what
  the pooling needs; :func:`shrink_groups` pools the concatenated table of every
  partition by empirical Bayes and :func:`wrap_results` turns the per-group arrays
  into an :class:`~pricelab.elasticity.ElasticityResults`. Between the two, stage 3
  refits each group's intercept and controls given its shrunk slope on the partitions
  again: :func:`fits_table` (the shrunk table, to ship to every partition),
  :func:`refit_groups` per partition and :func:`with_params` to put the refitted
  coefficients back (:mod:`pricelab.elasticity.refit`).
* :func:`normalize_by`, :func:`resolve_controls`, :func:`resolve_se` and :data:`REQUIRED_COLUMNS` let an
  engine check its own input the way :func:`~pricelab.elasticity.estimate` does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from . import design as D
from .compiled import compiled_loading, prepare_compiled
from .design import normalize_by, resolve_controls, resolve_se
from .fitters import first_date
from .glm_blocks import fit_poisson_runs
from .hierarchical import OWN, shrink
from .model import _wrap, fit_partition
from .refit import refit_design
from .results import ElasticityResults
from .streamed import STREAMED_MODELS, fit_streamed

#: Columns every sales frame needs.
REQUIRED_COLUMNS: tuple[str, ...] = D.REQUIRED
#: Per-group fit arrays in a :func:`group_stats` table (besides keys, attributes,
#: ``mean_q`` and the ``p_<name>`` coefficients).
STAT_COLUMNS = (
    "elasticity",
    "std_error",
    "n_obs",
    "n_zero",
    "price_variation",
    "fit_stat",
    "first_stage_f",
    "flags",
    "smearing",
    "model_var",
    "mean_log_price",
)
_LEVEL_ATTRS = ("category", "brand", "market")


class GroupFits(NamedTuple):
    """Raw per-group results, one entry per group in the order of ``keys``.

    Attributes
    ----------
    arrays:
        ``elasticity, std_error, n_obs, n_zero, price_variation, fit_stat,
        first_stage_f, flags, smearing`` as ``(G,)`` arrays (``flags`` as bits) and
        ``params`` as a ``(G, k)`` array of coefficients.
    keys:
        The ``by`` columns, one row per group.
    names:
        Coefficient names, the columns of ``params`` (controls as internal ``_c_*``
        names, shown without the prefix in the results).
    """

    arrays: dict[str, np.ndarray]
    keys: pl.DataFrame
    names: list[str]


def fit_groups(
    frame: pl.DataFrame, spec: dict[str, Any], *, origin: dt.date | None = None
) -> pl.DataFrame:
    """Elasticities and ``b_*`` coefficients of the whole groups in one partition.

    Parameters
    ----------
    frame:
        Sales rows of whole groups (for ``panel``: whole pooling levels), with the item
        attributes already joined; ``date`` as a polars ``Date``.
    spec:
        Keyword arguments of :func:`~pricelab.elasticity.estimate` (``model``, ``by``,
        ``controls``, ...), as for :func:`~pricelab.elasticity.fit_partition`.
    origin:
        First week of the whole data set. The ``trend`` control counts years from the
        first week of the data a fit sees, so a partition starting later gets an
        intercept that differs by ``b_trend × shift``; it is moved back to ``origin``
        (slopes and standard errors do not depend on the origin). ``None`` keeps the
        partition's own origin.

    Returns
    -------
    polars.DataFrame
        One row per group: the elasticity table of
        :attr:`~pricelab.elasticity.ElasticityResults.elasticities` joined with the
        coefficients, prefixed ``b_``.
    """
    out = fit_partition(frame, spec)
    if origin is not None and "b_trend" in out.columns and "date" in frame.columns:
        local_origin = frame["date"].min()
        shift = (local_origin - origin).days / D.YEAR_DAYS  # type: ignore[operator,union-attr]
        if shift:
            out = out.with_columns(pl.col("b_intercept") - pl.col("b_trend") * shift)
    return out


def group_stats(
    frame: pl.DataFrame, spec: dict[str, Any], *, origin: dt.date | None = None
) -> pl.DataFrame:
    """Stage 1 of ``hierarchical``: the per-group Poisson fits of one partition.

    Parameters
    ----------
    frame:
        Sales rows of whole groups with the item attributes joined.
    spec:
        ``by`` (list of group columns), ``controls``, ``se``, ``min_obs`` and optionally
        ``pool_by`` (extra pooling columns to carry), as in
        :func:`~pricelab.elasticity.estimate`.
    origin:
        First week of the whole data set (the ``trend`` origin); ``None``: the
        partition's first week.

    Returns
    -------
    polars.DataFrame
        One row per group: the ``by`` keys, the pooling attributes present
        (``category, brand, market`` and ``pool_by`` columns), the fit arrays
        (:data:`STAT_COLUMNS`), ``mean_q`` (mean weekly quantity) and the coefficients
        ``p_<name>``. Tables of several partitions concatenate into the input of
        :func:`shrink_groups`.

    Raises
    ------
    EmptyStoreError, DataError, UsageError
        As :func:`~pricelab.elasticity.estimate` for empty or invalid sales.
    """
    by = list(spec["by"])
    D.check_sales(frame, by)
    controls = D.resolve_controls(spec["controls"])
    start = origin if origin is not None else first_date(frame)
    out, keys, names, first = fit_poisson_runs(
        frame, by, controls, start, se=spec["se"], min_obs=spec["min_obs"], calendar=True
    )
    attrs = [
        c
        for c in dict.fromkeys([*_LEVEL_ATTRS, *(spec.get("pool_by") or [])])
        if c in first.columns and c not in by
    ]
    cols: dict[str, Any] = {k: out[k] for k in STAT_COLUMNS}
    cols["mean_q"] = out["mean_quantity"]
    for j, name in enumerate(names):
        cols[f"p_{name}"] = out["params"][:, j]
    table = pl.DataFrame(cols).with_columns(pl.col("n_obs", "n_zero", "flags").cast(pl.Int64))
    if "calendar" in out:  # calendar weeks counted from origin: partitions line up
        cal = pl.Series("calendar", out["calendar"]).cast(pl.List(pl.Float64))
        table = table.with_columns(cal)
    return pl.concat([keys, first.select(attrs), table], how="horizontal")


def shrink_groups(
    stats: pl.DataFrame, *, by: list[str], pool_by: list[str] | None = None, tau: str = "level"
) -> tuple[GroupFits, list[list[str]]]:
    """Stage 2 of ``hierarchical``: empirical-Bayes shrinkage over all groups.

    Parameters
    ----------
    stats:
        The :func:`group_stats` tables of every partition, concatenated (each group
        once).
    by:
        The group columns; the result is sorted by them.
    pool_by:
        Pooling level (default: category × market, else brand × market, else market,
        else everything, the first with enough members).
    tau:
        ``level`` (a between-group spread per pooling level) or ``common``.

    Returns
    -------
    fits : GroupFits
        The shrunk per-group arrays, keys and coefficient names (for
        :func:`wrap_results`).
    pool_by : list of list of str
        The pooling levels that were used.
    """
    t = stats.sort(by)
    out = {k: t[k].to_numpy().copy() for k in STAT_COLUMNS}
    pcols = [c for c in t.columns if c.startswith("p_")]
    out["params"] = t.select(pcols).to_numpy().astype(np.float64).copy()
    if "calendar" in t.columns:
        out["calendar"] = _padded(t["calendar"])
    attrs = [c for c in t.columns if c in by or c in _LEVEL_ATTRS or c in (pool_by or [])]
    # one row per group: its pooling attributes, and its mean weekly quantity
    out, used = shrink(
        out, t.select(attrs), t["mean_q"].to_numpy(), list(pool_by) if pool_by else None, tau=tau
    )
    return GroupFits(out, t.select(by), [c[2:] for c in pcols]), used


def _padded(lists: pl.Series) -> np.ndarray:
    """A list column (partitions may span fewer calendar weeks) as a zero-padded matrix."""
    lists = lists.cast(pl.List(pl.Float64))
    n = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    cal = np.zeros((n.size, int(n.max(initial=0))))
    rows = np.repeat(np.arange(n.size), n)
    cols = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    cal[rows, cols] = lists.explode().drop_nulls().to_numpy()
    return cal


def fits_table(fits: GroupFits) -> pl.DataFrame:
    """The per-group table :func:`refit_groups` reads, from :func:`shrink_groups`' fits.

    Parameters
    ----------
    fits:
        Shrunk per-group results (:func:`shrink_groups`).

    Returns
    -------
    polars.DataFrame
        One row per group: the keys, ``elasticity`` (posterior mean), ``own_elasticity``
        (the group's own estimate), ``flags`` (bits) and the coefficients ``p_<name>``.
    """
    a = fits.arrays
    cols: dict[str, Any] = {k: a[k] for k in ("elasticity", OWN, "flags")}
    for j, name in enumerate(fits.names):
        cols[f"p_{name}"] = a["params"][:, j]
    return pl.concat([fits.keys, pl.DataFrame(cols)], how="horizontal")


def refit_groups(
    frame: pl.DataFrame, fits: pl.DataFrame, spec: dict[str, Any], *, origin: dt.date | None = None
) -> pl.DataFrame:
    """Stage 3 of ``hierarchical``: refit one partition's intercepts and controls.

    Each group's intercept and controls are re-estimated by its own Poisson likelihood
    with the slope held at the posterior mean (:mod:`pricelab.elasticity.refit`).

    Parameters
    ----------
    frame:
        Sales rows of whole groups (as for :func:`group_stats`).
    fits:
        :func:`fits_table` of the shrunk fits (it may hold other partitions' groups too).
    spec:
        ``by`` and ``controls`` as given to :func:`group_stats`.
    origin:
        First week of the whole data set (the ``trend`` origin), as for :func:`group_stats`.

    Returns
    -------
    polars.DataFrame
        The rows of ``fits`` for the partition's groups, with the coefficients refitted;
        :func:`with_params` puts them back into the fits.
    """
    by = list(spec["by"])
    d = D.build(frame, by, D.resolve_controls(spec["controls"]), origin=origin)
    t = d.keys.join(fits, on=by, how="left")
    pcols = [f"p_{name}" for name in d.names]
    out = {k: t[k].to_numpy().copy() for k in ("elasticity", OWN, "flags")}
    out["params"] = t.select(pcols).to_numpy().astype(np.float64).copy()
    refit_design(d, out)
    return t.with_columns(pl.Series(c, out["params"][:, j]) for j, c in enumerate(pcols))


def with_params(fits: GroupFits, refitted: pl.DataFrame) -> GroupFits:
    """``fits`` with the coefficients of the groups in ``refitted`` replaced.

    Parameters
    ----------
    fits:
        Shrunk per-group results (:func:`shrink_groups`).
    refitted:
        The :func:`refit_groups` tables of every partition, concatenated.

    Returns
    -------
    GroupFits
        A copy whose ``params`` rows come from ``refitted`` where it has the group.
    """
    by = fits.keys.columns
    pcols = [f"p_{name}" for name in fits.names]
    t = fits.keys.join(refitted.select([*by, *pcols]), on=by, how="left")
    new = t.select(pcols).to_numpy().astype(np.float64)
    has = t.select(pl.col(pcols[0]).is_not_null()).to_series().to_numpy()
    params = np.where(has[:, None], new, fits.arrays["params"])
    return GroupFits({**fits.arrays, "params": params}, fits.keys, fits.names)


def wrap_results(
    fits: GroupFits, *, model: str, params: dict[str, Any], alpha: float, method: str | None = None
) -> ElasticityResults:
    """Per-group arrays as an :class:`~pricelab.elasticity.ElasticityResults`.

    Adds the ``positive``/``inelastic`` flags (to ``fits.arrays`` in place), the
    confidence intervals and the contract's column order, as
    :func:`~pricelab.elasticity.estimate` does.

    Parameters
    ----------
    fits:
        Raw per-group results (e.g. from :func:`shrink_groups`).
    model:
        The model name recorded in the results (one of :data:`~pricelab.elasticity.MODELS`).
    params:
        The options used (the results' ``parameters``).
    alpha:
        Confidence intervals are at level ``1 - alpha``.
    method:
        The ``method`` column (default ``model``; e.g. ``iv-cf``).

    Returns
    -------
    ElasticityResults
    """
    return _wrap(fits.arrays, fits.keys, fits.names, model, method or model, params, alpha)


__all__ = [
    "REQUIRED_COLUMNS",
    "STAT_COLUMNS",
    "STREAMED_MODELS",
    "GroupFits",
    "compiled_loading",
    "fit_groups",
    "fit_streamed",
    "fits_table",
    "group_stats",
    "normalize_by",
    "prepare_compiled",
    "refit_groups",
    "resolve_controls",
    "resolve_se",
    "shrink_groups",
    "with_params",
    "wrap_results",
]
