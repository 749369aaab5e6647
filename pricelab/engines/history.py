"""The simulation baseline of a large sales history, aggregated by an engine.

``simulate --engine spark --source PATH`` reads a history too big for one machine; the
only step that touches every row is the per item × market aggregation over the baseline
window. It runs here, in Spark, and returns one small row per item × market; the
projection and draws then run locally (:mod:`pricelab.simulate`) exactly as for a
database's own sales.

The aggregation is the one of :func:`pricelab.demand.baseline.window_sql` (spec in
:mod:`pricelab.store.window`; modes ``average`` and ``current``), written in Spark's
DataFrame API:

* the window is the last ``weeks`` weeks ending at the newest sales date
  (``date > max(date) - 7 * weeks days``);
* ``average``: mean weekly units, mean price, mean ``unit_cost``, number of weeks;
* ``current``: the last price in the window (``max_by(price, date)``) and the mean of each
  week's units moved to it with the group's elasticity, ``q (p_now / p) ** e`` (``q``
  itself where the elasticity is missing or not finite).

The formula itself is not written here: the caller passes the demand curve
(``curve=pricelab.demand.curves.ConstantElasticity``, whose methods accept Spark columns).
The engines sit below the demand layer (docs/DEVELOPING.md), so they take the curve as an
argument rather than importing it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from pricelab.errors import DataError, EmptyStoreError, UsageError
from pricelab.store.window import AGG_COLUMNS, MODES

__all__ = ["AGG_COLUMNS", "KEYS", "MODES", "HistoryWindow", "baseline_spark"]

KEYS = ["item_id", "market"]


@dataclass
class HistoryWindow:
    """The baseline window of a sales history, aggregated per item × market.

    Attributes
    ----------
    frame : polars.DataFrame
        :data:`AGG_COLUMNS`, one row per item × market with sales in the window, sorted.
    after, through : datetime.date
        The window holds the weeks after ``after`` through ``through`` (the newest date).
    rows : polars.DataFrame or None
        ``item_id, market, date`` of every sales row in the window, when asked for (the
        seasonality adjustment averages its seasonal level over them).
    """

    frame: pl.DataFrame
    after: dt.date
    through: dt.date
    rows: pl.DataFrame | None = None


def baseline_spark(
    source: Any,
    weeks: int,
    *,
    mode: str = "average",
    elasticities: pl.DataFrame | None = None,
    window_rows: bool = False,
    spark: Any = None,
    curve: Any = None,
) -> HistoryWindow:
    """Aggregate the baseline window of ``source`` on Spark.

    Parameters
    ----------
    source : path, table name or Spark DataFrame
        Sales (contract columns) as read by :func:`pricelab.engines.spark.read_source`:
        Parquet file or folder, ``delta:PATH``, a table name.
    weeks : int
        Length of the baseline window in weeks; it ends at the newest sales date.
    mode : {"average", "current"}
        See the module docstring.
    elasticities : polars.DataFrame, optional
        ``item_id, market, elasticity`` (needed by ``current``).
    window_rows : bool
        Also collect ``item_id, market, date`` of the window's rows.
    spark : SparkSession, optional
        Default: the active session, else a new local one.
    curve : demand curve class, optional
        Built as ``curve(base_price, base_quantity, elasticity)`` from Spark columns; its
        ``quantity(price)`` moves each week's units to the current price (needed by
        ``current``; :class:`pricelab.demand.curves.ConstantElasticity`).

    Returns
    -------
    HistoryWindow

    Raises
    ------
    InputFileError
        The source cannot be read.
    DataError
        A required column is missing.
    EmptyStoreError
        The source holds no sales.
    UsageError
        Unknown ``mode``, ``current`` without elasticities or curve, or ``weeks`` < 1.
    """
    from .spark import _collect, _pyspark, _to_spark, read_source, spark_session

    if mode not in MODES:
        raise UsageError(f"unknown baseline mode '{mode}'; choose average or current")
    if mode == "current" and elasticities is None:
        raise UsageError("baseline mode 'current' needs elasticities")
    if mode == "current" and curve is None:
        raise UsageError("baseline mode 'current' needs the demand curve (curve=...)")
    if isinstance(weeks, bool) or int(weeks) < 1:
        raise UsageError(f"baseline_weeks must be >= 1, got {weeks!r}")
    F = _pyspark().functions
    spark = spark or spark_session()
    sdf = read_source(spark, source)
    for col in ("item_id", "market", "date", "price", "quantity"):
        if col not in sdf.columns:
            raise DataError(f"sales has no '{col}' column")
    sdf = sdf.withColumn("date", F.col("date").cast("date"))
    through = sdf.agg(F.max("date")).first()[0]
    if through is None:
        raise EmptyStoreError(f"{source}: no sales in the source")
    after = through - dt.timedelta(days=7 * int(weeks))
    w = sdf.filter(F.col("date") > F.lit(after))
    q, p = F.col("quantity").cast("double"), F.col("price").cast("double")
    cost = (
        F.col("unit_cost").cast("double")
        if "unit_cost" in sdf.columns
        else F.lit(None).cast("double")
    )
    if mode == "average":
        agg = w.groupBy(*KEYS).agg(
            F.avg(q).alias("baseline_units"),
            F.avg(p).alias("baseline_price"),
            F.avg(cost).alias("sales_cost"),
            F.count(F.lit(1)).alias("n_weeks"),
        )
    else:
        assert elasticities is not None
        cur = w.groupBy(*KEYS).agg(F.max_by(p, F.col("date")).alias("_current"))
        est = _to_spark(
            spark,
            elasticities.select(
                pl.col("item_id").cast(pl.Utf8),
                pl.col("market").cast(pl.Utf8),
                pl.col("elasticity").cast(pl.Float64),
            ),
        )
        j = w.join(cur, on=KEYS, how="inner").join(est, on=KEYS, how="left")
        e = F.col("elasticity")
        finite = e.isNotNull() & ~F.isnan(e) & (F.abs(e) < F.lit(float("inf")))
        moved = curve(base_price=p, base_quantity=q, elasticity=e).quantity(F.col("_current"))
        units = F.when(finite, moved).otherwise(q)
        agg = j.groupBy(*KEYS).agg(
            F.avg(units).alias("baseline_units"),
            F.max("_current").alias("baseline_price"),
            F.avg(cost).alias("sales_cost"),
            F.count(F.lit(1)).alias("n_weeks"),
        )
    frame = _collect(agg)
    frame = frame.select(
        pl.col("item_id").cast(pl.Utf8),
        pl.col("market").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Float64) for c in AGG_COLUMNS[2:5]],
        pl.col("n_weeks").cast(pl.Int64),
    ).sort(KEYS)
    rows = None
    if window_rows:
        rows = _collect(w.select(*KEYS, "date")).with_columns(
            pl.col("item_id").cast(pl.Utf8),
            pl.col("market").cast(pl.Utf8),
            pl.col("date").cast(pl.Date),
        )
    return HistoryWindow(frame, after, through, rows)
