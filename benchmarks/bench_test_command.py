"""The README's test command timed as a new user runs it (issue #20, goal 6).

    python benchmarks/bench_test_command.py            # the README's command
    python benchmarks/bench_test_command.py --old      # and the previous one, in turn

Each run clones the repository's HEAD into a new folder (``git clone``: committed files
only), makes a new venv with the Python that runs this script, and runs there, timed as a
whole: ``pip install "nox[uv]" && nox -s tests`` (install + tests). ``--old`` also runs the
command as it was before (``pip install nox`` and ``nox --force-venv-backend virtualenv -s
tests -- -n 0``: pip installs, one process), so the pair is measured in the same run, under
the same load. The machine's package caches (pip's, uv's) are whatever they are: say which.
Prints one JSON line per run: wall and CPU seconds (user + system of every process, tests'
children included), exit code, the summary line of pytest and the load average around it.
The goal: at most 8 minutes on a quiet 2-core machine (aim: 5).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEW = ('"nox[uv]"', ["nox", "-s", "tests"])
OLD = ("nox", ["nox", "--force-venv-backend", "virtualenv", "-s", "tests", "--", "-n", "0"])


def run_once(name: str, install: str, nox_args: list[str], keep: bool) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix=f"pricelab-testcmd-{name}-"))
    src = root / "pricelab"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(REPO), str(src)], check=True)
    subprocess.run(["git", "checkout", "-q", head], cwd=src, check=True)
    # the real-data tests look for ../shared/data next to the checkout, as in the repository
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (root / "shared").symlink_to(shared)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    bindir = root / "venv" / "bin"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    script = f"pip install --quiet {install} && {' '.join(nox_args)}"
    load0 = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-c", script], cwd=src, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [ln for ln in proc.stdout.splitlines() if " passed" in ln or " failed" in ln]
    if not keep:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return {
        "command": name,
        "commit": head[:12],
        "script": script,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "pytest": lines[-1].strip("= ") if lines else proc.stderr[-500:],
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", action="store_true", help="also run the previous command")
    ap.add_argument("--keep", action="store_true", help="keep the clones and venvs")
    args = ap.parse_args()
    runs = [("readme", *NEW)] + ([("old", *OLD)] if args.old else [])
    for name, install, nox_args in runs:
        print(json.dumps(run_once(name, install, nox_args, args.keep)), flush=True)


if __name__ == "__main__":
    main()
