"""Cloud storage for real: ingest from and write to an Azurite container and a moto S3 bucket.

Both servers run on 127.0.0.1 on a free port: Azurite (the Azure Storage emulator, npm
package ``azurite``, installed once with npm into ``$PRICELAB_TEST_CACHE`` or
``~/.cache/pricelab``) and moto's S3 server mode. Tests skip when node/npm, moto or the
storage extras are not available. The CLI runs as a separate process, so credentials reach
it only through the libraries' usual environment variables.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from pricelab.errors import InputFileError, UsageError
from pricelab.io import read_table, write_table
from tests._moto import free_port, moto_s3, wait_port
from tests.conftest import CliResult, run_subprocess, snapshot

AZURITE_VERSION = "3.35.0"
# Azurite's published development account (not a secret: it is in Microsoft's docs)
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> Path | None:
    """``azurite-blob`` from $PRICELAB_AZURITE, PATH or the cache (npm-installed there once).

    npm installs into a staging folder beside the cache's ``azurite`` folder, which is moved
    into place (and marked complete) only after npm succeeded: an install that was killed,
    or two test processes installing at once, never leave a half-installed package that
    every later run would take for the real one (seen: ``Cannot find module
    '../generated/Context'``). A cache without the mark is installed again.
    """
    if os.environ.get("PRICELAB_AZURITE"):
        return Path(os.environ["PRICELAB_AZURITE"])
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    cache = Path(os.environ.get("PRICELAB_TEST_CACHE", Path.home() / ".cache" / "pricelab"))
    home = cache / "azurite"
    binary = home / "node_modules" / ".bin" / "azurite-blob"
    mark = home / f".complete-{AZURITE_VERSION}"
    if binary.exists() and mark.exists():
        return binary
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".azurite-", dir=cache))
    try:
        done = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                str(staging),
                f"azurite@{AZURITE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return None
        (staging / mark.name).touch()
        if not mark.exists():  # another process may have finished first: keep its install
            shutil.rmtree(home, ignore_errors=True)
            with contextlib.suppress(OSError):  # it did, between the check and the move
                staging.rename(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary if binary.exists() and mark.exists() else None


def _conn(port: int, key: str = DEV_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


@pytest.fixture(scope="module")
def azurite() -> Iterator[dict[str, str]]:
    """A running Azurite blob service with a container ``pricing``; yields the environment."""
    pytest.importorskip("adlfs", reason="needs pricelab[azure]")
    blob = pytest.importorskip("azure.storage.blob", reason="needs pricelab[azure]")
    binary = azurite_binary()
    if binary is None:
        pytest.skip("Azurite unavailable (needs node and npm, or $PRICELAB_AZURITE)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    proc = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            workdir,
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        env = {"AZURE_STORAGE_CONNECTION_STRING": _conn(port)}
        client = blob.BlobServiceClient.from_connection_string(
            env["AZURE_STORAGE_CONNECTION_STRING"]
        )
        client.create_container("pricing")
        env["_port"] = str(port)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """moto's S3 server on loopback with a bucket ``pricing``; yields the environment."""
    with moto_s3() as env:
        yield env


def _blob_bytes(env: dict[str, str], name: str) -> bytes:
    """Read a blob with the Azure SDK itself (not through pricelab)."""
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
    return client.get_blob_client("pricing", name).download_blob().readall()


def _put_blob(env: dict[str, str], name: str, data: bytes) -> None:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
    client.get_blob_client("pricing", name).upload_blob(data, overwrite=True)


def _s3_client(env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="x",
    )


def _cli_env(env: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not k.startswith("_")}
    out["NO_COLOR"] = "1"
    return out


@pytest.fixture
def az_env(azurite: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Azurite's credentials in this process's environment (as a pod would have them)."""
    for k, v in _cli_env(azurite).items():
        monkeypatch.setenv(k, v)
    return azurite


@pytest.fixture
def s3_env(s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """moto's endpoint and credentials in this process's environment."""
    for k, v in _cli_env(s3).items():
        monkeypatch.setenv(k, v)
    return s3


def test_ingest_from_azure_blob_matches_local_ingest(
    az_env: dict[str, str],
    small_files: dict[str, Path],
    tmp_path: Path,
    cli: Callable[..., CliResult],
) -> None:
    for kind in ("sales", "items"):
        _put_blob(az_env, f"in/{kind}.csv", small_files[kind].read_bytes())
    cloud_db, local_db = tmp_path / "cloud.duckdb", tmp_path / "local.duckdb"
    res = cli(
        "ingest",
        "--db",
        cloud_db,
        "--sales",
        "az://pricing/in/sales.csv",
        "--items",
        "abfs://pricing/in/items.csv",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["loaded"] == {"sales": 40, "items": 2}
    res = cli(
        "ingest", "--db", local_db, "--sales", small_files["sales"], "--items", small_files["items"]
    )
    assert res.exit_code == 0, res.stderr
    cloud, local = snapshot(cloud_db), snapshot(local_db)
    for table in ("sales", "items"):
        assert cloud[table].height > 0
        assert cloud[table].equals(local[table]), table
    # lineage names the URL the user gave, with the hash of its content
    params = json.loads(cloud["runs"].filter(pl.col("command") == "ingest")["parameters"][0])
    assert params["files"]["sales"] == {
        "path": "az://pricing/in/sales.csv",
        "sha256": hashlib.sha256(small_files["sales"].read_bytes()).hexdigest(),
    }
    assert params["files"]["items"]["path"] == "abfs://pricing/in/items.csv"
    # a bad cell in a blob is reported with the blob's URL, row and column
    bad = (
        small_files["sales"].read_text().replace("IT-2,DE,2024-01-08,105", "IT-2,DE,2024-01-08,-5")
    )
    _put_blob(az_env, "in/bad.csv", bad.encode())
    res = cli("ingest", "--db", cloud_db, "--sales", "az://pricing/in/bad.csv")
    assert res.exit_code == 2
    assert "az://pricing/in/bad.csv" in res.stderr and "price" in res.stderr


def test_output_to_azure_blob_is_the_local_file(
    az_env: dict[str, str], loaded_db: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    local = tmp_path / "runs.csv"
    for target in ("az://pricing/out/runs.csv", local):
        res = cli("runs", "list", "--db", loaded_db, "--output", target)
        assert res.exit_code == 0, res.stderr
    assert _blob_bytes(az_env, "out/runs.csv") == local.read_bytes()
    assert b"ingest" in local.read_bytes()


def test_api_round_trip_parquet_and_errors(az_env: dict[str, str]) -> None:
    azurite = az_env
    df = pl.DataFrame({"item_id": ["A", "B"], "price": [10.5, 99.0], "n": [1, 2]})
    assert write_table(df, "az://pricing/api/t.parquet") == "az://pricing/api/t.parquet"
    assert read_table("abfs://pricing/api/t.parquet").equals(df)
    back = pl.read_parquet(io.BytesIO(_blob_bytes(azurite, "api/t.parquet")))
    assert back.equals(df)
    with pytest.raises(InputFileError, match=r"^az://pricing/api/nope\.csv: file not found$"):
        read_table("az://pricing/api/nope.csv")
    _put_blob(azurite, "api/empty.csv", b"")
    with pytest.raises(InputFileError, match="az://pricing/api/empty.csv: file is empty"):
        read_table("az://pricing/api/empty.csv")
    with pytest.raises(UsageError, match="az://no-such-container/x.csv: container, bucket"):
        write_table(df, "az://no-such-container/x.csv")


def test_wrong_azure_key_is_refused_without_showing_it(
    azurite: dict[str, str], tmp_path: Path
) -> None:
    _put_blob(azurite, "in/secret.csv", b"item_id,market,date,price,quantity\n")
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="
    env = {"AZURE_STORAGE_CONNECTION_STRING": _conn(int(azurite["_port"]), key=wrong)}
    res = run_subprocess(
        "ingest", "--db", tmp_path / "x.duckdb", "--sales", "az://pricing/in/secret.csv", env=env
    )
    assert res.returncode == 2, res.stderr
    assert "az://pricing/in/secret.csv: access denied" in res.stderr
    assert wrong not in res.stderr + res.stdout
    assert wrong[:20] not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_ingest_from_s3_and_output_to_s3(
    s3_env: dict[str, str],
    small_files: dict[str, Path],
    tmp_path: Path,
    cli: Callable[..., CliResult],
) -> None:
    client = _s3_client(s3_env)
    client.put_object(
        Bucket="pricing",
        Key="in/sales.parquet",
        Body=_parquet_bytes(read_table(small_files["sales"])),
    )
    db, local_db = tmp_path / "s3.duckdb", tmp_path / "local.duckdb"
    res = cli("ingest", "--db", db, "--sales", "s3://pricing/in/sales.parquet")
    assert res.exit_code == 0, res.stderr
    assert cli("ingest", "--db", local_db, "--sales", small_files["sales"]).exit_code == 0
    assert snapshot(db)["sales"].equals(snapshot(local_db)["sales"])
    local = tmp_path / "quality.json"
    for target in ("s3://pricing/out/quality.json", local):
        res = cli("validate", "--db", db, "--output", target)
        assert res.exit_code == 0, res.stderr
    body = client.get_object(Bucket="pricing", Key="out/quality.json")["Body"].read()
    assert body == local.read_bytes()


def test_s3_missing_object_names_it_without_secrets(s3: dict[str, str], tmp_path: Path) -> None:
    res = run_subprocess(
        "ingest",
        "--db",
        tmp_path / "x.duckdb",
        "--sales",
        "s3://pricing/nope/sales.csv",
        env=_cli_env(s3),
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "error: s3://pricing/nope/sales.csv: file not found"
    assert s3["AWS_SECRET_ACCESS_KEY"] not in res.stderr + res.stdout


def _parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def test_nightly_pipeline_from_an_azure_container(
    az_env: dict[str, str], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    """`pricelab pipeline run` end to end on sample files in Azurite; a rerun does nothing."""
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    sales = pl.read_csv(sample / "sales.csv")
    keep = sorted(sales["item_id"].unique())[:12]
    for kind in ("sales", "items", "costs", "inventory"):
        df = pl.read_csv(sample / f"{kind}.csv").filter(pl.col("item_id").is_in(keep))
        buf = io.BytesIO()
        df.write_csv(buf)
        _put_blob(az_env, f"nightly/{kind}.csv", buf.getvalue())
    _put_blob(az_env, "nightly/markets.csv", (sample / "markets.csv").read_bytes())
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        "inputs: {folder: 'az://pricing/nightly'}\n"
        "estimate: {model: hierarchical}\n"
        f"optimize: {{constraints: '{sample / 'constraints.yaml'}'}}\n"
        "monitor: {as_of: data}\n"
    )
    db = tmp_path / "nightly.duckdb"
    res = cli("pipeline", "run", "--config", config, "--db", db, "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    steps = {s["step"]: s for s in doc["steps"]}
    assert steps["ingest"]["status"] == "ok" and steps["optimize"]["status"] == "ok"
    n_sales = sales.filter(pl.col("item_id").is_in(keep)).height
    snap = snapshot(db)
    assert snap["sales"].height == n_sales and snap["items"].height == len(keep)
    assert snap["plans"].height > 0
    ingest = json.loads(snap["runs"].filter(pl.col("command") == "ingest")["parameters"][0])
    assert ingest["files"]["sales"]["path"] == "az://pricing/nightly/sales.csv"
    again = json.loads(cli("pipeline", "run", "--config", config, "--db", db, "--json").stdout)
    assert again["exit_code"] == 0 and again["changed"] is False
    assert snapshot(db)["sales"].equals(snap["sales"])
