"""``--output`` and the run's COMMIT: a file at the target always has its run recorded.

The file is staged beside its target and put in place after the COMMIT; a COMMIT that fails
leaves no file, no staged file and an earlier file untouched. The failure is real: the CLI
runs as its own process with a file-size limit (``RLIMIT_FSIZE``) above the size of its
output file and below the size of the write-ahead log its COMMIT writes, so the COMMIT fails
with "File too large" as it would on a full disk. The limit is twice the file the same
command writes without a limit (the test first checks that this run succeeded).
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, assert_same, copy_db, run_subprocess, snapshot

SAMPLE = REPO / "data" / "sample"
COMMANDS = {
    "estimate": ["estimate", "--model", "ols"],  # file written in a helper thread
    "optimize": ["optimize", "--constraints", SAMPLE / "constraints.yaml"],
    "design": [
        *("experiment", "design", "--name", "t1", "--cells=-10,0,10"),
        *("--weeks", "4", "--seed", "1"),
    ],
}


def run_limited(
    *args: object, limit: int | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m pricelab ARGS`` as a process; no file of it may grow past ``limit`` bytes."""

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return run_subprocess(*args, env={**(env or {}), "NO_COLOR": "1"}, preexec_fn=cap)


def _limit_for(template: Path, tmp: Path, command: str) -> int:
    """Twice the size of the file ``command`` writes (checked to succeed without a limit)."""
    out = tmp / "probe.parquet"
    db = copy_db(template, tmp / "probe.duckdb")
    res = run_limited(*COMMANDS[command], "--db", db, "--output", out)
    assert res.returncode == 0, res.stderr
    return 2 * out.stat().st_size


def _staged(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".pricelab-tmp")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_commit_that_fails_leaves_no_file_and_an_earlier_file_untouched(
    estimated_template: Path,
    tmp_path: Path,
    command: str,
) -> None:
    limit = _limit_for(estimated_template, tmp_path, command)
    db = copy_db(estimated_template, tmp_path / "db.duckdb")
    before = snapshot(db)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    first, second = out_dir / "first.parquet", out_dir / "second.parquet"
    second.write_bytes(b"yesterday's file")
    for target in (first, second):
        res = run_limited(*COMMANDS[command], "--db", db, "--output", target, limit=limit)
        assert res.returncode == 2, res.stderr
        assert "cannot commit, nothing was recorded" in res.stderr, res.stderr
        assert "File too large" in res.stderr and "internal error" not in res.stderr
        assert "wrote " not in res.stderr  # never said: the file is not there
    assert not first.exists()
    assert second.read_bytes() == b"yesterday's file"
    assert _staged(out_dir) == []
    assert_same(before, snapshot(db))


def test_the_happy_path_file_is_the_one_written_outside_a_transaction(
    estimated_template: Path,
    tmp_path: Path,
) -> None:
    """The staged and renamed file has the bytes of :func:`write_table` called directly on
    the stored run's rows (no block open: written and renamed at once, as before)."""
    from pricelab.io import write_table
    from pricelab.store import Store

    db = copy_db(estimated_template, tmp_path / "db.duckdb")
    out = tmp_path / "e.csv"
    out.write_text("old\n")
    res = run_limited(*COMMANDS["estimate"], "--db", db, "--output", out)
    assert res.returncode == 0, res.stderr
    assert f"wrote 616 rows to {out}" in res.stderr
    with Store.open(db, read_only=True) as store:
        run_id = store.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
        table = store.read_result("elasticities", run_id)
    ref = tmp_path / "ref.csv"
    write_table(table.select(pl.read_csv(out).columns), ref)
    assert out.read_bytes() == ref.read_bytes()
    assert _staged(tmp_path) == []


def test_a_commit_that_fails_leaves_no_object_in_s3(
    estimated_template: Path, tmp_path: Path
) -> None:
    """Object storage: the upload goes to a temporary object before the COMMIT and is copied
    to its name after it; a failed COMMIT deletes the temporary object."""
    from tests._moto import moto_s3

    with moto_s3() as env:
        import boto3

        client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="x",
        )
        client.put_object(Bucket="pricing", Key="out/e.parquet", Body=b"yesterday's file")
        limit = _limit_for(estimated_template, tmp_path, "estimate")
        db = copy_db(estimated_template, tmp_path / "db.duckdb")
        before = snapshot(db)
        url = "s3://pricing/out/e.parquet"
        res = run_limited(*COMMANDS["estimate"], "--db", db, "--output", url, env=env, limit=limit)
        assert res.returncode == 2, res.stderr
        assert "cannot commit, nothing was recorded" in res.stderr, res.stderr
        assert_same(before, snapshot(db))
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="pricing")["Contents"]]
        assert keys == ["out/e.parquet"]
        body = client.get_object(Bucket="pricing", Key="out/e.parquet")["Body"].read()
        assert body == b"yesterday's file"
        # the same command with room to commit: the object is the local file, nothing else
        res = run_limited(*COMMANDS["estimate"], "--db", db, "--output", url, env=env)
        assert res.returncode == 0, res.stderr
        local = tmp_path / "probe.parquet"  # written by _limit_for on a copy of the same db
        body = client.get_object(Bucket="pricing", Key="out/e.parquet")["Body"].read()
        assert body == local.read_bytes()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="pricing")["Contents"]]
        assert keys == ["out/e.parquet"]
