"""Transient failures are not bad input: exit 75 (EX_TEMPFAIL), retries, bounded time."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pricelab import transient
from pricelab.errors import UnavailableError
from tests.conftest import CliResult, run_subprocess

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_classification() -> None:
    class EndpointConnectionError(Exception):
        pass

    class ClientError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"An error occurred ({status})")
            self.response = {"ResponseMetadata": {"HTTPStatusCode": status}}

    wrapped = RuntimeError("read failed")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert transient.is_transient(wrapped)
    assert transient.is_transient(EndpointConnectionError("Could not connect"))
    assert transient.is_transient(TimeoutError())
    assert transient.is_transient(ClientError(503)) and transient.is_transient(ClientError(429))
    assert not transient.is_transient(ClientError(404)) and not transient.is_transient(
        ClientError(403)
    )
    assert not transient.is_transient(FileNotFoundError("sales.csv"))
    assert not transient.is_transient(ValueError("bad csv"))


def test_retries_with_exponential_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICELAB_STORAGE_RETRIES", "3")
    monkeypatch.setenv("PRICELAB_STORAGE_BACKOFF", "0.5")
    waits: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionResetError("Connection reset by peer")
        return "ok"

    assert transient.call(flaky, sleep=waits.append) == "ok" and waits == [0.5, 1.0]
    calls["n"], waits[:] = -10, []
    with pytest.raises(ConnectionResetError):
        transient.call(flaky, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0] and calls["n"] == -6  # 1 try + 3 retries

    def bad() -> None:
        calls["n"] += 1
        raise ValueError("not transient")

    calls["n"], waits[:] = 0, []
    with pytest.raises(ValueError):
        transient.call(bad, sleep=waits.append)
    assert calls["n"] == 1 and waits == []
    monkeypatch.setenv("PRICELAB_STORAGE_RETRIES", "lots")
    with pytest.raises(Exception, match=r"\$PRICELAB_STORAGE_RETRIES must be a number"):
        transient.retries()


@pytest.mark.parametrize("proto", ["s3", "az"])
def test_unreachable_object_storage_is_exit_75_within_seconds(tmp_path: Path, proto: str) -> None:
    pytest.importorskip("s3fs" if proto == "s3" else "adlfs")
    port = _closed_port()
    env = {
        "PRICELAB_STORAGE_RETRIES": "2",
        "PRICELAB_STORAGE_BACKOFF": "0.2",
        "PRICELAB_STORAGE_TIMEOUT": "5",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AZURE_STORAGE_CONNECTION_STRING": (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        ),
    }
    db = tmp_path / "p.duckdb"
    url = f"{proto}://pricing/incoming/sales.csv"
    # the storage calls themselves: bounded by (retries + 1) x timeout + backoff, and in fact
    # refused at once (the Azure SDK alone retried for 84 s; s3fs said "file not found")
    from pricelab import urls

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        start = time.monotonic()
        with pytest.raises(UnavailableError, match="storage unavailable"):
            urls.sha256(url)
        took = time.monotonic() - start
    assert took < 3 * 5 + 0.6 + 10, took
    if proto == "s3":
        config = tmp_path / "p.yaml"
        config.write_text(f"inputs:\n  files:\n    sales: {url}\n")
        proc = run_subprocess("pipeline", "run", "--config", config, "--db", db, "--json", env=env)
    else:
        proc = run_subprocess("ingest", "--db", db, "--sales", url, "--json", env=env)
    assert proc.returncode == 75, proc.stderr
    assert AZURITE_KEY not in proc.stdout + proc.stderr
    assert not db.exists()  # nothing was created or changed
    doc = json.loads(proc.stdout)
    assert doc["status"] == "unavailable" and doc["exit_code"] == 75
    if proto == "s3":
        assert doc["failed_step"] == "ingest" and doc["steps"][0]["exit_code"] == 75
        msg = doc["steps"][0]["message"]
    else:
        assert doc["retry"] is True
        msg = doc["error"]
    assert f"{url}: storage unavailable (read)" in msg and "after 2 retries" in msg


def test_db_url_says_how_to_stage_it(cli: Callable[..., CliResult]) -> None:
    res = cli("runs", "list", "--db", "s3://pricing/state/p.duckdb")
    assert res.exit_code == 2
    assert res.stderr.startswith(
        "error: --db s3://pricing/state/p.duckdb: the database must be a local file"
    )
    assert "copy it to a local or mounted path" in res.stderr and "folder" not in res.stderr


def test_unavailable_error_is_75() -> None:
    assert UnavailableError("x").exit_code == 75
