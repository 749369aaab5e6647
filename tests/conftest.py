"""Shared fixtures: a CLI runner, small contract files, the sample ingested (and estimated) once
per session, and a database snapshot helper."""

from __future__ import annotations

import os

# One BLAS thread per test process (and the CLI processes the tests start): on a 2-core
# machine that is busy, OpenBLAS's threads spin against each other and against the other
# processes (a 14,894 x 423 QR took 59 s with the default threads, 2.1 s with one). Set
# before numpy loads; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import settings
from typer.testing import CliRunner

from pricelab.cli.app import app
from pricelab.store import Store

# Property tests are derandomized by default, so a CI run is reproducible: the same
# examples every time. ``nox -s fuzz`` (HYPOTHESIS_PROFILE=explore) searches new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Invoke the pricelab CLI in-process; returns exit code, stdout and stderr."""
    runner = CliRunner()

    def invoke(*args: object) -> CliResult:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke


def run_subprocess(
    *args: object,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pricelab ARGS`` as a real process (``preexec_fn``: run in the child
    before exec, e.g. a resource limit)."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "pricelab", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec_fn,  # noqa: PLW1509 - callers pass only setrlimit, before exec
    )


def write_csv(path: Path, text: str) -> Path:
    """Write ``text`` (dedented lines) to ``path``."""
    path.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n")
    return path


def snapshot(db: Path) -> dict[str, pl.DataFrame]:
    """Every table of the database, sorted, for before/after comparisons."""
    with Store.open(db, read_only=True) as store:
        return store.snapshot()


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    """Two snapshots hold the same tables with the same content."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equals(b[name]), f"table {name} changed"


@pytest.fixture
def small_files(tmp_path: Path) -> dict[str, Path]:
    """A small valid contract dataset: 2 items x 2 markets x 10 weeks plus dimension tables."""
    rows = ["item_id,market,date,price,quantity,promo,unit_cost"]
    import datetime as dt

    start = dt.date(2024, 1, 1)
    for item in ("IT-1", "IT-2"):
        for market in ("US", "DE"):
            for w in range(10):
                d = start + dt.timedelta(weeks=w)
                price = 100 + 5 * (w % 3) + (10 if market == "US" else 0)
                rows.append(f"{item},{market},{d.isoformat()},{price},{(w * 7) % 5},{w % 2},40")
    sales = tmp_path / "sales.csv"
    sales.write_text("\n".join(rows) + "\n")
    items = write_csv(
        tmp_path / "items.csv",
        """
        item_id,category,brand,boutique_id,season
        IT-1,bags,Maison A,B01,SS24
        IT-2,shoes,Maison B,B02,FW24""",
    )
    costs = write_csv(
        tmp_path / "costs.csv",
        """
        item_id,unit_cost,market
        IT-1,40,
        IT-2,45,US""",
    )
    markets = write_csv(
        tmp_path / "markets.csv",
        """
        market,currency,fx_rate,vat_rate
        US,USD,1.08,0
        DE,EUR,1.0,0.19""",
    )
    inventory = write_csv(
        tmp_path / "inventory.csv",
        """
        item_id,stock,market
        IT-1,30,
        IT-2,12,US""",
    )
    return {
        "sales": sales,
        "items": items,
        "costs": costs,
        "markets": markets,
        "inventory": inventory,
    }


@pytest.fixture
def loaded_db(tmp_path: Path, small_files: dict[str, Path], cli: Callable[..., CliResult]) -> Path:
    """A database with ``small_files`` ingested through the CLI."""
    db = tmp_path / "loaded.duckdb"
    args: list[object] = ["ingest", "--db", db]
    for kind, path in small_files.items():
        args += [f"--{kind}", path]
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    return db


@pytest.fixture
def memfs() -> Iterator[object]:
    """fsspec's in-memory filesystem, emptied after the test."""
    import fsspec

    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/t"):
        fs.rm("/t", recursive=True)


def copy_db(template: Path, dest: Path) -> Path:
    """Copy a closed database file to ``dest`` (a test's own copy of a session template)."""
    assert not Path(f"{template}.wal").exists(), f"{template} is still open or not checkpointed"
    shutil.copyfile(template, dest)
    return dest


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample ingested once per session (per xdist worker). Read-only by
    convention: take a copy with ``copy_db`` to write (estimate, optimize, ...)."""
    from pricelab import api

    db = tmp_path_factory.mktemp("sample-template") / "sample.duckdb"
    api.ingest(db, **api.sample_files())
    return db


@pytest.fixture(scope="session")
def estimated_template(tmp_path_factory: pytest.TempPathFactory, sample_template: Path) -> Path:
    """``sample_template`` plus the default estimate run (hierarchical); copy it to write."""
    from pricelab import api

    db = copy_db(sample_template, tmp_path_factory.mktemp("estimated-template") / "sample.duckdb")
    api.estimate(db)
    return db
