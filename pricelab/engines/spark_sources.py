"""Where the Spark engine's sales (and items) come from, and why a read failed.

A source is a Spark DataFrame, a table name, a local Parquet file or folder, a Delta table
(``delta:LOCATION`` or a folder holding ``_delta_log``) or an object-storage URL
(``s3://``, ``s3a://``, ``abfs://``, ``abfss://``, ``az://``, ``gs://``).

Object storage: when the Spark session has a Hadoop filesystem for the URL's scheme (a
cluster with the connector jars, e.g. Databricks or EMR) Spark reads it itself. Otherwise
the Parquet file or folder is read through fsspec + Arrow on the driver (the extras
``pricelab[s3]`` / ``[azure]`` / ``[gcs]``, with pricelab's retries and timeouts) and handed
to Spark as Arrow batches: fine for what fits in the driver's memory; for more, add the
connector. Delta: Spark's own reader when Delta Lake is configured in the session, else
the ``deltalake`` package (``pricelab[delta]``, no JVM involved), handed over the same way.

A failure names its real cause: no Hadoop filesystem for the scheme and no fsspec package,
a configured connector class missing from the classpath (which jar to add), credentials,
a missing path, an unreachable store (:class:`~pricelab.errors.UnavailableError`, exit 75).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from pricelab import transient
from pricelab.errors import InputFileError, PricelabError, UnavailableError, UsageError
from pricelab.io import is_delta, read_delta
from pricelab.urls import PROTOCOLS, display, failure, filesystem

#: scheme -> the Hadoop connector jar that provides it
CONNECTORS = {
    "s3": "hadoop-aws (with the AWS SDK bundle)",
    "s3a": "hadoop-aws (with the AWS SDK bundle)",
    "s3n": "hadoop-aws (with the AWS SDK bundle)",
    "abfs": "hadoop-azure",
    "abfss": "hadoop-azure",
    "wasb": "hadoop-azure",
    "wasbs": "hadoop-azure",
    "gs": "gcs-connector (com.google.cloud.bigdataoss)",
}
#: schemes pricelab can read through fsspec when Spark cannot
OBJECT_STORES = {s for s, (extra, _) in PROTOCOLS.items() if extra} | set(CONNECTORS)


def read_source(spark: Any, source: Any) -> Any:
    """A Spark DataFrame from a DataFrame, a Parquet or Delta path or URL, or a table name.

    ``delta:LOCATION`` or a folder holding ``_delta_log`` reads Delta; a path ending in
    ``.parquet``/``.pq``, an existing folder or a URI (``dbfs:/``, ``s3://``...) reads
    Parquet; anything else is a table name (``catalog.schema.table``).
    """
    from pyspark.sql import DataFrame

    if isinstance(source, DataFrame):
        return source
    text = str(source)
    try:
        if is_delta(text):
            return _read_delta(spark, text)
        p = Path(text)
        if p.suffix.lower() == ".csv":
            raise InputFileError(
                f"{text}: the spark engine reads Parquet, Delta or a table; "
                "convert the CSV to Parquet first"
            )
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in OBJECT_STORES:
            return _read_object_store(spark, text, scheme)
        if p.exists() or "://" in text or ":/" in text or p.suffix.lower() in (".parquet", ".pq"):
            if "://" not in text and ":/" not in text and not p.exists():
                raise InputFileError(f"{text}: file not found")
            return spark.read.parquet(text)
        return spark.table(text)
    except PricelabError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark raises many kinds; one clear message
        raise _cause(text, exc) from exc


def _hadoop_filesystem(spark: Any, scheme: str) -> bool | None:
    """True when Spark has a Hadoop filesystem for ``scheme``, False when it has none,
    None when it cannot be asked (Spark Connect). A filesystem class that the session or
    cluster configured but is missing from the classpath raises :class:`UsageError`
    naming the jar (Hadoop's own defaults, e.g. ``fs.gs.impl``, count as none)."""
    try:
        jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    except Exception:  # noqa: BLE001 - no JVM gateway on Spark Connect
        return None
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, conf)
        return True
    except Exception as exc:  # noqa: BLE001 - a Py4JJavaError wrapping the JVM's reason
        text = str(exc)
        missing = "ClassNotFoundException" in text or "Class " in text and "not found" in text
        if missing and _set_by_user(conf, f"fs.{scheme}.impl"):
            raise UsageError(_missing_jar(spark, scheme, conf.get(f"fs.{scheme}.impl"))) from None
        return False  # none, or only Hadoop's default mapping to a class nobody installed


def _set_by_user(conf: Any, key: str) -> bool:
    """``key`` was set by the session or the cluster, not only by Hadoop's core-default.xml."""
    try:
        sources = conf.getPropertySources(key)
    except Exception:  # noqa: BLE001 - unknown: take it as set
        return True
    return sources is not None and any(str(s) != "core-default.xml" for s in sources)


def _missing_jar(spark: Any, scheme: str, cls: str | None) -> str:
    try:
        hadoop = spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    except Exception:  # noqa: BLE001 - the version is only a hint
        hadoop = "this Spark's Hadoop"
    jar = CONNECTORS.get(scheme, "the connector jar for the scheme")
    return (
        f"Spark is configured to read {scheme}:// with {cls or 'a filesystem class'}, but that class is not on the "
        f"classpath: add {jar} matching Hadoop {hadoop} (spark.jars.packages or the "
        f"cluster's libraries), or remove the fs.{scheme}.impl setting to let pricelab read "
        f"{scheme}:// itself"
    )


def _read_object_store(spark: Any, url: str, scheme: str) -> Any:
    if _hadoop_filesystem(spark, scheme) is not False:
        return spark.read.parquet(url)
    try:
        fs, inner = filesystem(url)
    except UsageError as exc:
        raise UsageError(
            f"{display(url)}: this Spark session has no Hadoop filesystem for {scheme}:// "
            f"(the {CONNECTORS.get(scheme, 'connector')} jar is not installed), and pricelab "
            f"reads it itself only with {exc.args[0].split(' needs ', 1)[-1]}"
            if scheme in PROTOCOLS
            else f"{display(url)}: this Spark session has no Hadoop filesystem for "
            f"{scheme}:// (add the {CONNECTORS[scheme]} jar to the cluster)"
        ) from None
    import pyarrow.dataset as ds

    def load() -> pa.Table:
        return ds.dataset(inner, filesystem=fs, format="parquet").to_table()

    try:
        table = transient.call(load)
    except PricelabError:
        raise
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        raise failure(url, exc, writing=False, what="Parquet file or folder") from None
    return _from_arrow(spark, table)


def _read_delta(spark: Any, text: str) -> Any:
    loc = text[len("delta:") :] if text.startswith("delta:") else text
    extensions = str(spark.conf.get("spark.sql.extensions", "") or "")
    if "delta" in extensions.lower():
        return spark.read.format("delta").load(loc)
    return _from_arrow(spark, read_delta(text))


def _from_arrow(spark: Any, table: pa.Table) -> Any:
    if table.num_rows == 0:
        raise InputFileError("the source has no rows")
    return spark.createDataFrame(table)


def _cause(text: str, exc: BaseException) -> PricelabError:
    """The reason a Spark read failed, from the JVM's message (first matching line)."""
    name = display(text)
    full = str(exc)
    low = full.lower()
    if "unsupportedfilesystemexception" in low or "no filesystem for scheme" in low:
        scheme = text.split(":", 1)[0]
        return UsageError(
            f"{name}: this Spark session has no Hadoop filesystem for {scheme}:// "
            f"(add {CONNECTORS.get(scheme, 'the connector jar for it')} to the cluster)"
        )
    if "classnotfoundexception" in low:
        scheme = text.split("://", 1)[0] if "://" in text else ""
        jar = CONNECTORS.get(scheme, "the connector jar")
        return UsageError(f"{name}: a Spark connector class is missing: add {jar}")
    if any(w in low for w in ("accessdenied", "access denied", "403", "credential", "forbidden")):
        return InputFileError(f"{name}: access denied: check the credentials Spark uses")
    if "path does not exist" in low or "filenotfoundexception" in low:
        return InputFileError(f"{name}: file not found")
    if "table or view not found" in low or "table_or_view_not_found" in low:
        return InputFileError(f"{name}: no such table (and not a file that exists)")
    if transient.is_transient(exc) or any(
        w in low for w in ("unknownhostexception", "connection refused", "sockettimeout")
    ):
        return UnavailableError(f"{name}: storage unavailable for Spark (retry later)")
    first = (full.strip().splitlines() or [type(exc).__name__])[0]
    return InputFileError(f"{name}: cannot read with Spark: {first}")
