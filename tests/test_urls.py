"""Paths and URLs without a server: normalisation, memory:// and file:// through the CLI,
missing extras, unknown protocols, and secrets kept out of messages."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab.errors import InputFileError, UsageError
from pricelab.io import read_table, read_text, write_table, write_text
from pricelab.urls import _failure, display, is_url, normalize, redact
from tests.conftest import CliResult, snapshot

fsspec = pytest.importorskip("fsspec", reason="needs fsspec (any storage extra)")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("az://c/in/sales.csv", "az://c/in/sales.csv"),
        (Path("az://c/in/sales.csv"), "az://c/in/sales.csv"),  # typer's Path option form
        (
            Path("abfs://c@acct.dfs.core.windows.net/x.parquet"),
            "abfs://c@acct.dfs.core.windows.net/x.parquet",
        ),
        ("S3://bucket/k.csv", "s3://bucket/k.csv"),
        (Path("gs://b/k.csv"), "gs://b/k.csv"),
        ("memory://t/x.csv", "memory://t/x.csv"),
    ],
)
def test_urls_survive_pathlib(given: object, expected: str) -> None:
    assert normalize(given) == expected  # type: ignore[arg-type]
    assert is_url(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("file:///tmp/a/b.csv", Path("/tmp/a/b.csv")),
        (Path("file:///tmp/a/b.csv"), Path("/tmp/a/b.csv")),
        ("data/sales.csv", Path("data/sales.csv")),
        (Path("weird:/dir/x.csv"), Path("weird:/dir/x.csv")),  # not a protocol we know: a path
        ("C:/data/x.csv", Path("C:/data/x.csv")),
    ],
)
def test_local_paths_stay_paths(given: object, expected: Path) -> None:
    assert normalize(given) == expected  # type: ignore[arg-type]
    assert not is_url(given)  # type: ignore[arg-type]


def test_unknown_protocol_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^ftp://h/x\.csv: unknown storage protocol 'ftp://'"):
        read_table("ftp://h/x.csv")


def test_missing_extra_names_the_extra(tmp_path: Path) -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed: the missing-extra message cannot be shown")
    with pytest.raises(UsageError) as err:
        read_table("gs://bucket/sales.csv")
    assert str(err.value) == (
        "gs:// needs the 'gcsfs' package: install pricelab[gcs] (pip install 'pricelab[gcs]')"
    )
    with pytest.raises(UsageError, match=r"install pricelab\[gcs\]"):
        write_table(pl.DataFrame({"a": [1]}), Path("gs://bucket/out.csv"))


def test_memory_round_trip_every_format(memfs: object) -> None:
    df = pl.DataFrame({"item_id": ["A", "B"], "price": [1.5, 2.0], "q": [3, 4]})
    for ext in ("csv", "parquet"):
        write_table(df, f"memory://t/df.{ext}")
        assert read_table(f"memory://t/df.{ext}").equals(df)
        assert read_table(Path(f"memory://t/df.{ext}"), all_strings=True)["q"].to_list() == [
            "3",
            "4",
        ]
    write_table(df, "memory://t/df.json")
    assert json.loads(read_text("memory://t/df.json")) == df.to_dicts()
    write_text("memory://t/cfg.yaml", "horizon_weeks: 4\n")
    assert read_text(Path("memory://t/cfg.yaml")) == "horizon_weeks: 4\n"


def test_memory_errors_match_local_errors(memfs: object, tmp_path: Path) -> None:
    fs = memfs
    fs.pipe("/t/empty.csv", b"")  # type: ignore[attr-defined]
    fs.pipe("/t/header.csv", b"item_id,price\n")  # type: ignore[attr-defined]
    fs.pipe("/t/latin1.csv", "item_id\ncaf\xe9\n".encode("latin-1"))  # type: ignore[attr-defined]
    cases = {
        "empty.csv": b"",
        "header.csv": b"item_id,price\n",
        "latin1.csv": "item_id\ncaf\xe9\n".encode("latin-1"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputFileError) as local_err:
            read_table(tmp_path / name)
        with pytest.raises(InputFileError) as mem_err:
            read_table(f"memory://t/{name}")
        # the same message, naming the URL instead of the local path
        assert str(mem_err.value) == str(local_err.value).replace(str(tmp_path), "memory://t")
    with pytest.raises(InputFileError, match=r"^memory://t/none\.csv: file not found$"):
        read_table("memory://t/none.csv")
    with pytest.raises(InputFileError, match="unknown file extension '.txt'"):
        read_table("memory://t/x.txt")
    with pytest.raises(UsageError, match="unknown file extension '.xlsx'"):
        write_table(pl.DataFrame({"a": [1]}), "memory://t/x.xlsx")


def test_cli_ingest_and_output_through_memory_and_file_urls(
    memfs: object, small_files: dict[str, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    fs = memfs
    fs.pipe("/t/in/sales.csv", small_files["sales"].read_bytes())  # type: ignore[attr-defined]
    db = tmp_path / "m.duckdb"
    res = cli(
        "ingest",
        "--db",
        db,
        "--sales",
        "memory://t/in/sales.csv",
        "--markets",
        f"file://{small_files['markets']}",
    )
    assert res.exit_code == 0, res.stderr
    local_db = tmp_path / "l.duckdb"
    assert (
        cli(
            "ingest",
            "--db",
            local_db,
            "--sales",
            small_files["sales"],
            "--markets",
            small_files["markets"],
        ).exit_code
        == 0
    )
    assert snapshot(db)["sales"].equals(snapshot(local_db)["sales"])
    assert snapshot(db)["markets"].equals(snapshot(local_db)["markets"])
    res = cli("runs", "list", "--db", db, "--output", "memory://t/out/runs.parquet")
    assert res.exit_code == 0, res.stderr
    runs = pl.read_parquet(fs.cat("/t/out/runs.parquet"))  # type: ignore[attr-defined]
    assert runs.height == 1
    # a missing URL input is exit 2 with one line naming it; nothing is loaded
    res = cli("ingest", "--db", tmp_path / "n.duckdb", "--sales", "memory://t/in/nope.csv")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: memory://t/in/nope.csv: file not found"


def test_secrets_never_reach_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3OA=="
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};",
    )
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-0123456789")
    echoed = RuntimeError(f"bad request with AccountKey={key} and aws-secret-0123456789")
    for writing in (False, True):
        msg = str(_failure("az://c/x.csv?sig=SASTOKEN123&se=2030", echoed, writing=writing))
        assert key not in msg and key[:16] not in msg
        assert "aws-secret-0123456789" not in msg and "SASTOKEN123" not in msg
        assert msg.startswith("az://c/x.csv: cannot ")
    assert redact("https://user:pw@host/x?sig=abc&sv=1") == "https://***@host/x?sig=***&sv=1"
    assert display("s3://b/k.csv?X-Amz-Signature=abc") == "s3://b/k.csv"
    denied = _failure("s3://b/k.csv", PermissionError("Forbidden"), writing=False)
    assert str(denied) == (
        "s3://b/k.csv: access denied: check the credentials in the environment (PermissionError)"
    )


def test_probes_join_and_sha256_agree_between_local_and_memory(
    memfs: object, tmp_path: Path
) -> None:
    import hashlib

    from pricelab.urls import exists, is_dir, is_file, join, sha256

    data = b"item_id,market\n" + b"A,US\n" * 100_000  # > 1 MiB: several chunks
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sales.csv").write_bytes(data)
    memfs.pipe("/t/in/sales.csv", data)  # type: ignore[attr-defined]
    for folder in (tmp_path / "in", "memory://t/in", Path("memory://t/in")):
        f = join(folder, "sales.csv")
        assert exists(f) and is_file(f) and not is_dir(f)
        assert is_dir(folder) and not is_file(folder)
        assert not exists(join(folder, "items.csv")) and not is_file(join(folder, "items.csv"))
        assert sha256(f) == hashlib.sha256(data).hexdigest()
    assert join("memory://t/in/", "x.csv") == "memory://t/in/x.csv"
    with pytest.raises(InputFileError, match=r"^memory://t/in/none\.csv: file not found$"):
        sha256("memory://t/in/none.csv")
