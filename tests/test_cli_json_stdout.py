"""``--json`` prints one JSON document on stdout even when native code writes to file
descriptor 1 during the command (HiGHS 1.16 in scipy can print
``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``,
ERGO-Code/HiGHS#2783): a real CLI process whose library call first writes to file
descriptor 1 the way C code does (``printf`` into C's buffered stdout, and a raw
``write(1, ...)``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_csv

NOISE = "HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();"

# The CLI as ``python -m pricelab`` runs it, with pricelab.api.optimize (the command's one
# library call) first writing to file descriptor 1 as native code does.
SCRIPT = f"""
import ctypes, os, sys
import pricelab.api as api
real = api.optimize
def noisy(*a, **k):
    ctypes.CDLL(None).printf(b"{NOISE} (printf)\\n")  # C's stdout: flushed at exit
    os.write(1, b"{NOISE} (write)\\n")
    return real(*a, **k)
api.optimize = noisy
from pricelab.cli.app import main
sys.argv = ["pricelab", *sys.argv[1:]]
main()
"""


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *[str(a) for a in args]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.skipif(os.name != "posix", reason="printf through ctypes.CDLL(None)")
def test_native_writes_to_stdout_go_to_stderr_with_json(tmp_path: Path) -> None:
    demand = write_csv(
        tmp_path / "demand.csv",
        """item_id,market,elasticity,base_price,base_quantity,unit_cost
        A,DE,-2.3,40.0,10.0,21.37
        B,DE,-1.8,25.0,30.0,9.50""",
    )
    cons = tmp_path / "c.yaml"
    cons.write_text("bounds: {max_decrease_pct: 50, max_increase_pct: 20}\n")
    ok = _run("optimize", "--demand", demand, "--constraints", cons, "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)  # the one document, nothing else on stdout
    assert doc["status"] == "optimal" and NOISE not in ok.stdout
    assert f"{NOISE} (printf)" in ok.stderr and f"{NOISE} (write)" in ok.stderr
    bad = _run("optimize", "--demand", demand, "--constraints", tmp_path / "no.yaml", "--json")
    assert bad.returncode == 2
    assert set(json.loads(bad.stdout)) == {"error", "exit_code"}
    assert NOISE in bad.stderr and bad.stderr.count("error:") == 1
    # without --json the command's output stays on stdout, as people read it
    plain = _run("optimize", "--demand", demand, "--constraints", cons)
    assert plain.returncode == 0 and NOISE in plain.stdout


def test_sample_plan_with_parity_prints_one_document(
    tmp_path: Path, estimated_template: Path
) -> None:
    """The case that was seen: on the bundled sample with parity 3% the rounding MILP's
    HiGHS (1.16, scipy) printed its ``tmpSolver.run();`` line first on stdout and
    ``optimize --json``'s output did not parse. The real command, no hook: stdout is one
    JSON document; what HiGHS prints (if this version does) is on stderr."""
    from tests.conftest import copy_db, run_subprocess

    db = copy_db(estimated_template, tmp_path / "shop.duckdb")
    cons = tmp_path / "c.yaml"
    cons.write_text("objective: profit\nhorizon_weeks: 4\nparity:\n  max_gap_pct: 3\n")
    res = run_subprocess("optimize", "--db", db, "--constraints", cons, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "optimal"
    assert "Highs" not in res.stdout
