"""Work done on one partition of whole groups, and the global step of ``hierarchical``.

Nothing here imports Spark: the functions take and return polars / Arrow frames, so
the same code runs in the local dry run that fixes the output schema, inside Spark's
``mapInArrow`` and in tests.

* Per-group models (``ols``, ``poisson``, ``iv``; ``panel`` on whole pooling levels):
  :func:`pricelab.elasticity.fit_partition` on the partition. The seasonal ``trend``
  control is measured from the first week *of the data the fit sees*, so a partition
  starting later than the whole data set gets an intercept that differs by
  ``b_trend × shift``; :func:`fit_frame` moves it back to the global origin (slopes
  and standard errors do not depend on the origin).
* ``hierarchical``: stage 1 (:func:`poisson_stats`) runs the batched per-group Poisson
  fit and returns what the empirical-Bayes step needs per group; stage 2
  (:func:`shrink_stats`, on the driver) applies the library's own
  :func:`pricelab.elasticity.hierarchical.shrink` to the collected small table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from pricelab.elasticity import design as D
from pricelab.elasticity import fit_partition

# per-group arrays of the fit kept for the shrinkage step
STATS = ("elasticity", "std_error", "n_obs", "n_zero", "price_variation", "fit_stat",
         "first_stage_f", "flags", "smearing", "model_var", "mean_log_price")
LEVEL_ATTRS = ("category", "brand", "market")


def fit_frame(df: pl.DataFrame, spec: dict[str, Any], origin: dt.date | None) -> pl.DataFrame:
    """Elasticities and ``b_*`` coefficients of the whole groups in ``df``.

    ``origin`` is the first week of the whole data set (the ``trend`` origin the local
    engine uses); the intercept is moved to it.
    """
    out = fit_partition(df, spec)
    if origin is not None and "b_trend" in out.columns and "date" in df.columns:
        local_origin = df["date"].min()
        shift = (local_origin - origin).days / D.YEAR_DAYS  # type: ignore[operator,union-attr]
        if shift:
            out = out.with_columns(pl.col("b_intercept") - pl.col("b_trend") * shift)
    return out


def poisson_stats(df: pl.DataFrame, spec: dict[str, Any], origin: dt.date | None
                  ) -> pl.DataFrame:
    """Stage 1 of ``hierarchical``: per-group Poisson fit and what shrinkage needs.

    One row per group: the ``by`` keys, the pooling attributes (``category, brand,
    market`` and ``pool_by`` columns), the fit arrays (:data:`STATS`), ``mean_q``
    (mean weekly quantity) and the coefficients ``p_<name>``.
    """
    from pricelab.elasticity.groupfit import fit_poisson

    by = list(spec["by"])
    D.check_sales(df, by)
    d = D.build(df, by, D.resolve_controls(spec["controls"]), origin=origin)
    out = fit_poisson(d, se=spec["se"], min_obs=spec["min_obs"])
    G = d.n_groups
    first = np.flatnonzero(np.r_[True, np.diff(d.codes) != 0])
    attrs = [c for c in dict.fromkeys([*LEVEL_ATTRS, *(spec.get("pool_by") or [])])
             if c in d.frame.columns and c not in by]
    cols: dict[str, Any] = {k: out[k] for k in STATS}
    cols["mean_q"] = np.bincount(d.codes, weights=d.q, minlength=G) / np.maximum(
        np.bincount(d.codes, minlength=G), 1)
    for j, name in enumerate(d.names):
        cols[f"p_{name}"] = out["params"][:, j]
    table = pl.DataFrame(cols).with_columns(pl.col("n_obs", "n_zero", "flags").cast(pl.Int64))
    return pl.concat([d.keys, d.frame[first].select(attrs), table], how="horizontal")


def shrink_stats(stats: pl.DataFrame, spec: dict[str, Any], params: dict[str, Any]) -> Any:
    """Stage 2 of ``hierarchical``: empirical-Bayes shrinkage over all groups.

    ``stats`` is the concatenation of :func:`poisson_stats` over every partition.
    Returns an :class:`~pricelab.elasticity.ElasticityResults` like the local engine's.
    """
    from pricelab.elasticity.hierarchical import shrink
    from pricelab.elasticity.model import _wrap

    by = list(spec["by"])
    t = stats.sort(by)
    G = t.height
    out = {k: t[k].to_numpy().copy() for k in STATS}
    pcols = [c for c in t.columns if c.startswith("p_")]
    out["params"] = t.select(pcols).to_numpy().astype(np.float64).copy()
    attrs = [c for c in t.columns if c in by or c in LEVEL_ATTRS
             or c in (spec.get("pool_by") or [])]
    # one pseudo-row per group: the group's mean quantity and its pooling attributes
    design = SimpleNamespace(n_groups=G, codes=np.arange(G, dtype=np.int64),
                             q=t["mean_q"].to_numpy(), frame=t.select(attrs))
    pool = list(spec["pool_by"]) if spec.get("pool_by") else None
    out, used = shrink(out, design, None, pool,  # type: ignore[arg-type]
                       tau=spec.get("tau", "level"))
    params = {**params, "pool_by": used}
    return _wrap(out, t.select(by), [c[2:] for c in pcols], "hierarchical", "hierarchical",
                 params, spec["alpha"])


class PartitionTask:
    """The function ``mapInArrow`` runs on each partition (picklable, no Spark import).

    Collects the partition's Arrow batches (a partition holds whole groups, which
    Arrow batching may split), runs :func:`fit_frame` or :func:`poisson_stats` once on
    all of them and yields the result cast to ``schema``.
    """

    def __init__(self, spec: dict[str, Any], origin: dt.date | None, stage: str,
                 schema: pa.Schema | None = None) -> None:
        self.spec = spec
        self.origin = origin
        self.stage = stage
        self.schema = schema

    def run(self, table: pa.Table) -> pa.Table:
        """Fit one partition given as an Arrow table; returns an Arrow table."""
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if "date" in df.columns and df.schema["date"] != pl.Date:
            df = df.with_columns(pl.col("date").cast(pl.Date))
        fn = poisson_stats if self.stage == "poisson_stats" else fit_frame
        out = fn(df, self.spec, self.origin).to_arrow()
        if self.schema is not None:
            out = out.select(self.schema.names).cast(self.schema)
        return out

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        items = [b for b in batches if b.num_rows]
        if not items:
            return
        yield from self.run(pa.Table.from_batches(items)).to_batches()
