"""The Spark engine's sources on a real local[2] session: object storage (moto's S3 server)
read through fsspec when Spark has no Hadoop filesystem for the scheme, Delta tables through
``deltalake`` without Delta's jars, and errors that name the real cause (no filesystem and
no package, a configured connector class missing from the classpath, an unreachable store)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from pricelab.engines import get_engine
from tests._moto import free_port, moto_s3
from tests.conftest import CliResult
from tests.test_engine_spark import PANDAS_WARNING, assert_same, sample, spark  # noqa: F401

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings(PANDAS_WARNING)]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on loopback with a bucket ``pricing``; yields its endpoint."""
    with moto_s3() as env:
        yield env["AWS_ENDPOINT_URL"]


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "moto-secret-Zq81",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
        "NO_COLOR": "1",
    }.items():
        monkeypatch.setenv(k, v)
    return s3_server


def test_s3_folder_read_through_fsspec_equals_local(spark, sample: dict, s3_env: str) -> None:  # noqa: F811
    import s3fs

    from pricelab.engines.spark_sources import _hadoop_filesystem

    assert _hadoop_filesystem(spark, "s3") is False  # so pricelab, not Spark, reads it
    fs = s3fs.S3FileSystem(endpoint_url=s3_env)
    sales: pl.DataFrame = sample["sales"]
    half = sales.height // 2
    for i, part in enumerate((sales.head(half), sales.tail(sales.height - half))):
        with fs.open(f"pricing/in/sales/part-{i}.parquet", "wb") as f:
            part.write_parquet(f)
    with fs.open("pricing/in/sales/_SUCCESS", "wb") as f:  # as Spark leaves it: ignored
        f.write(b"")
    kw = {"model": "ols", "items": sample["items"]}
    local = get_engine("local").estimate(sales, **kw)
    remote = get_engine("spark", spark=spark).estimate("s3://pricing/in/sales/", **kw)
    assert remote.elasticities.height == 616
    assert_same(local.elasticities, remote.elasticities)


def test_unreachable_store_is_transient(
    cli: Callable[..., CliResult],
    spark,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("s3fs", reason="needs pricelab[s3]")
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "PRICELAB_STORAGE_RETRIES": "1",
        "PRICELAB_STORAGE_BACKOFF": "0.01",
        "PRICELAB_STORAGE_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(k, v)
    res = cli("estimate", "--engine", "spark", "--source", "s3://pricing/in/sales.parquet")
    assert res.exit_code == 75, res.stderr
    assert res.stderr.startswith("error: s3://pricing/in/sales.parquet: storage unavailable (read)")
    assert "after 1 retries" in res.stderr and "o34" not in res.stderr


def test_configured_connector_missing_from_the_classpath(
    cli: Callable[..., CliResult],
    spark,  # noqa: F811
) -> None:
    conf = spark._jsc.hadoopConfiguration()
    conf.set("fs.s3a.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
    try:
        res = cli("estimate", "--engine", "spark", "--source", "s3a://pricing/sales.parquet")
    finally:
        conf.unset("fs.s3a.impl")
    hadoop = spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert res.exit_code == 2
    assert res.stderr == (
        "error: Spark is configured to read s3a:// with org.apache.hadoop.fs.s3a.S3AFileSystem, "
        "but that class is not on the classpath: add hadoop-aws (with the AWS SDK bundle) "
        f"matching Hadoop {hadoop} (spark.jars.packages or the cluster's libraries), or remove "
        "the fs.s3a.impl setting to let pricelab read s3a:// itself\n"
    )


def test_no_hadoop_filesystem_and_no_package(
    cli: Callable[..., CliResult],
    spark,  # noqa: F811
) -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed: gs:// would be read through it")
    res = cli("estimate", "--engine", "spark", "--source", "gs://pricing/sales.parquet")
    assert res.exit_code == 2
    assert res.stderr == (
        "error: gs://pricing/sales.parquet: this Spark session has no Hadoop filesystem for "
        "gs:// (the gcs-connector (com.google.cloud.bigdataoss) jar is not installed), and "
        "pricelab reads it itself only with the 'gcsfs' package: install pricelab[gcs] "
        "(pip install 'pricelab[gcs]')\n"
    )


def test_delta_source_without_delta_jars(spark, sample: dict, tmp_path: Path) -> None:  # noqa: F811
    deltalake = pytest.importorskip("deltalake", reason="needs pricelab[delta]")
    table = tmp_path / "sales_delta"
    sales: pl.DataFrame = sample["sales"]
    deltalake.write_deltalake(str(table), sales.head(2000).to_arrow())
    deltalake.write_deltalake(str(table), sales.slice(2000).to_arrow(), mode="append")
    assert "delta" not in str(spark.conf.get("spark.sql.extensions", "") or "")
    kw = {"model": "poisson", "items": sample["items"]}
    local = get_engine("local").estimate(sales, **kw)
    for source in (str(table), f"delta:{table}"):
        remote = get_engine("spark", spark=spark).estimate(source, **kw)
        assert_same(local.elasticities, remote.elasticities)
    # the local engine reads the same table with no JVM at all
    from pricelab.engines.local import read_sales

    again = read_sales(f"delta:{table}").sort("item_id", "market", "date")
    assert again.equals(sales.sort("item_id", "market", "date"))
