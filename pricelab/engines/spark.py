"""The Spark engine: the same batched estimators, run on partitions of whole groups.

Sales are read by Spark (Parquet path, Delta path, table name or a Spark DataFrame),
checked in one aggregation (row count, first week, invalid prices and quantities),
joined with the item attributes, repartitioned by group (by ``item_id`` when it is a
group column, so the ``hausman`` instrument sees every market of an item; by the
pooling level for ``panel``) and fitted with ``mapInArrow``: one call of
:func:`pricelab.elasticity.fit_groups` per partition, many thousand groups each.
The output schema comes from a dry run of the same code on a small sample.

``hierarchical`` runs per-group Poisson on Spark, collects the per-group table (one
row per group) and applies the library's empirical-Bayes shrinkage on the driver.

Needs the extra ``pricelab[spark]`` (PySpark >= 3.5) and Java 17.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from pricelab.elasticity import (
    MODELS,
    REQUIRED_COLUMNS,
    ElasticityResults,
    normalize_by,
    not_per_group,
    resolve_controls,
    resolve_se,
)
from pricelab.errors import DataError, EmptyStoreError, UsageError

from ._tasks import PartitionTask, finish_hierarchical, shrink_stats
from .local import _iso_date
from .spark_sources import read_source

MASTER_ENV = "PRICELAB_SPARK_MASTER"
ROWS_PER_PARTITION = 500_000
SAMPLE_ROWS = 2_000
PANDAS_WARNING = "PySpark does not yet fully support pandas"


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError as exc:
        raise UsageError("the spark engine needs PySpark: pip install 'pricelab[spark]'") from exc
    return pyspark.sql


def spark_session(master: str | None = None) -> Any:
    """The active Spark session, else a new local one.

    A new session uses ``master`` (else ``$PRICELAB_SPARK_MASTER``, else ``local[2]``)
    unless ``spark-submit`` already set one, small shuffle partitions, no UI, and a
    worker ``PYTHONPATH`` that can import this pricelab.
    """
    sql = _pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    from pyspark import SparkConf

    root = str(Path(__file__).resolve().parents[2])
    builder = sql.SparkSession.builder.appName("pricelab")
    if not SparkConf().contains("spark.master"):
        builder = builder.master(master or os.environ.get(MASTER_ENV, "local[2]"))
    pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    builder = (
        builder.config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv.PYTHONPATH", pythonpath)
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _collect(sdf: Any) -> pl.DataFrame:
    """A Spark DataFrame as a polars frame, through Arrow."""
    table = (
        sdf.toArrow() if hasattr(sdf, "toArrow") else pa.Table.from_batches(sdf._collect_as_arrow())
    )
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def _check(
    sdf: Any, by: list[str], before: str | None
) -> tuple[Any, int, dt.date | None, dt.date | None]:
    """Filter, check columns and values in one pass: (frame, rows, first week, last week)."""
    F = _pyspark().functions
    if before is not None:
        sdf = sdf.filter(F.col("date") < F.lit(_iso_date(before)))
    for col in REQUIRED_COLUMNS:
        if col not in sdf.columns:
            raise DataError(f"sales has no '{col}' column")
    for col in by:
        if col not in sdf.columns:
            raise UsageError(f"unknown --by column '{col}' (not in sales or items)")
    has_date = "date" in sdf.columns
    if has_date:
        sdf = sdf.withColumn("date", F.col("date").cast("date"))
    price, qty = F.col("price"), F.col("quantity")
    row = sdf.agg(
        F.count(F.lit(1)).alias("rows"),
        (F.min("date") if has_date else F.lit(None)).alias("origin"),
        (F.max("date") if has_date else F.lit(None)).alias("end"),
        F.sum(F.when(price.isNull() | ~(price > 0), 1).otherwise(0)).alias("bad_p"),
        F.sum(F.when(qty.isNull() | (qty < 0), 1).otherwise(0)).alias("bad_q"),
    ).first()
    if not row["rows"]:
        raise EmptyStoreError("no sales rows to estimate from (the sales source is empty)")
    if row["bad_p"]:
        raise DataError(f"sales: column 'price' must be > 0 ({row['bad_p']} rows are not)")
    if row["bad_q"]:
        raise DataError(f"sales: column 'quantity' must be >= 0 ({row['bad_q']} rows are not)")
    return sdf, int(row["rows"]), row["origin"], row["end"]


def _with_items(spark: Any, sdf: Any, items: Any) -> Any:
    """Left-join item attributes not already in sales (as the local engine does)."""
    if items is None:
        return sdf
    F = _pyspark().functions
    idf = _to_spark(spark, items) if isinstance(items, pl.DataFrame) else read_source(spark, items)
    extra = [c for c in idf.columns if c != "item_id" and c not in sdf.columns]
    if not extra:
        return sdf
    idf = idf.select("item_id", *extra).dropDuplicates(["item_id"])
    return sdf.join(F.broadcast(idf), on="item_id", how="left")


def _partition_cols(model: str, by: list[str], pool: list[str]) -> list[str]:
    if model == "panel":
        return pool
    return ["item_id"] if "item_id" in by else by


def _map(sdf: Any, task: PartitionTask, sample: pa.Table) -> Any:
    """Apply ``task`` with ``mapInArrow``, the output schema from a dry run on ``sample``."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # the sample may cut groups: only the column types of the result are used
        warnings.simplefilter("ignore")
        schema = from_arrow_schema(task.run(sample).schema)
    task.schema = to_arrow_schema(schema)
    with warnings.catch_warnings():  # pandas is not used on this path
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        return sdf.mapInArrow(task, schema)


def _spec(
    model: str,
    by: list[str],
    instrument: Any,
    controls: Any,
    se: str,
    alpha: float,
    min_obs: int,
    iv_method: str,
    pool_by: list[str] | None,
    fixed_effects: Sequence[str] | None,
    slope: str,
    tau: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": model,
        "by": by,
        "controls": controls,
        "se": se,
        "alpha": alpha,
        "min_obs": min_obs,
    }
    if model == "iv":
        spec.update(instrument=instrument, iv_method=iv_method)
    elif instrument is not None:
        raise UsageError("instrument is only used by model 'iv'")
    if fixed_effects:
        spec["fixed_effects"] = list(fixed_effects)
    if model == "panel":
        spec.update(pool_by=pool_by, slope=slope)
    if model == "hierarchical":
        spec.update(pool_by=pool_by, tau=tau)
    return spec


def estimate_spark_results(
    source: Any,
    *,
    model: str = "hierarchical",
    by: str | Sequence[str] | None = ("item_id", "market"),
    instrument: str | Sequence[str] | None = None,
    items: Any = None,
    controls: str | Sequence[str] | None = "default",
    fixed_effects: Sequence[str] | None = None,
    se: str | None = None,
    alpha: float = 0.05,
    min_obs: int = 8,
    iv_method: str = "2sls",
    pool_by: Sequence[str] | None = None,
    slope: str = "item",
    tau: str = "level",
    before: str | None = None,
    partitions: int | None = None,
    spark: Any = None,
    output: str | os.PathLike[str] | None = None,
) -> ElasticityResults:
    """Estimate on Spark; an :class:`ElasticityResults` like the local engine's.

    Same parameters as :func:`estimate_spark`, which returns its table.
    """
    if model not in MODELS:
        raise not_per_group(model) or UsageError(
            f"unknown model '{model}'; choose one of {', '.join(MODELS)}"
        )
    by_cols = normalize_by(by)
    if model == "hierarchical" and not by_cols:
        raise UsageError("model 'hierarchical' needs group columns (--by)")
    spark = spark or spark_session()
    sdf = _with_items(spark, read_source(spark, source), items)
    sdf, rows, origin, end = _check(sdf, by_cols, before)
    pool = list(pool_by) if pool_by else None
    if model == "panel":
        pool = pool or (["category", "market"] if "category" in sdf.columns else ["market"])
        for c in pool:
            if c not in sdf.columns:
                raise UsageError(f"unknown pooling column '{c}'")
    spec = _spec(
        model,
        by_cols,
        instrument,
        controls,
        resolve_se(model, se, fixed_effects),
        alpha,
        min_obs,
        iv_method,
        pool,
        fixed_effects,
        slope,
        tau,
    )
    n = partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(rows / ROWS_PER_PARTITION)
    )
    part = _partition_cols(model, by_cols, pool or [])
    parted = sdf.repartition(n, *part) if part else sdf.repartition(1)
    sample = _sample(sdf)
    stage = "poisson_stats" if model == "hierarchical" else "fit"
    mapped = _map(parted, PartitionTask(spec, origin, stage), sample)
    params: dict[str, Any] = {
        **spec,
        "controls": resolve_controls(controls),
        "fixed_effects": list(fixed_effects or []),
        "engine": "spark",
        "origin": str(origin) if origin is not None else None,
        # predictions hold the trend at the last fitted week
        "end": str(end) if end is not None else None,
    }
    if model == "hierarchical":
        table, shrunk = shrink_stats(_collect(mapped), spec)
        refit = _map(parted, PartitionTask(spec, origin, "refit", shrunk=table), sample)
        res = finish_hierarchical(shrunk, _collect(refit), spec, params)
        if output is not None:
            _write(spark, _joined(res), output)
        return res
    if output is not None:
        mapped.write.mode("overwrite").parquet(str(output))
        mapped = spark.read.parquet(str(output))
    table = _collect(mapped)
    table = table.sort(by_cols) if by_cols else table
    return _split(table, by_cols, model, params)


def _sample(sdf: Any) -> pa.Table:
    """The first rows, for the dry run that fixes the output schema (groups may be cut:
    only the column types matter)."""
    return _collect(sdf.limit(SAMPLE_ROWS)).to_arrow()


def _split(
    table: pl.DataFrame, by: list[str], model: str, params: dict[str, Any]
) -> ElasticityResults:
    """Elasticities and ``b_*`` coefficients -> :class:`ElasticityResults`."""
    bcols = [c for c in table.columns if c.startswith("b_")]
    pframe = table.select([*by, *bcols]).rename({c: c[2:] for c in bcols})
    return ElasticityResults(table.drop(bcols), pframe, model, params)


def _joined(res: ElasticityResults) -> pl.DataFrame:
    """The elasticities with the coefficients as ``b_*`` columns (as fit_partition gives)."""
    by = res.by
    p = res.params.rename({c: f"b_{c}" for c in res.params.columns if c not in by})
    return res.elasticities.join(p, on=by, how="left")


def _to_spark(spark: Any, df: pl.DataFrame) -> Any:
    """A small polars frame as a Spark DataFrame (Arrow on PySpark 4, pandas before)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        try:
            return spark.createDataFrame(df.to_arrow())
        except (TypeError, ValueError):  # PySpark < 4 takes pandas
            return spark.createDataFrame(df.to_pandas())


def _write(spark: Any, df: pl.DataFrame, output: str | os.PathLike[str]) -> None:
    _to_spark(spark, df).write.mode("overwrite").parquet(str(output))


def estimate_spark(
    source: Any,
    *,
    model: str = "hierarchical",
    by: str | Sequence[str] | None = ("item_id", "market"),
    spark: Any = None,
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> pl.DataFrame:
    """Estimate elasticities per group on Spark.

    Parameters
    ----------
    source:
        Sales: a Parquet file or folder, ``delta:PATH`` or a Delta folder, a table name,
        or a Spark DataFrame (columns as in the contract's sales table).
    model:
        ``ols``, ``poisson``, ``iv``, ``panel`` (partitioned by pooling level) or
        ``hierarchical`` (per-group Poisson on Spark, shrinkage on the driver).
    by:
        Group columns (default item × market).
    spark:
        A Spark session; default the active one, else a new ``local[2]`` session.
    output:
        When given, the elasticities (with ``b_*`` coefficient columns) are written
        there by Spark as a Parquet dataset.
    **options:
        ``instrument, items (polars frame, path or table), controls, fixed_effects, se,
        alpha, min_obs, iv_method, pool_by, slope, tau`` as in
        :func:`pricelab.elasticity.estimate`, plus ``before`` (ISO date) and
        ``partitions`` (default: enough for about 500k rows each).

    Returns
    -------
    polars.DataFrame
        One row per group: the contract columns, diagnostics and ``b_*`` coefficients,
        sorted by the group columns (the local engine's order).
    """
    res = estimate_spark_results(source, model=model, by=by, spark=spark, output=output, **options)
    return _joined(res)
