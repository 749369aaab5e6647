"""The README's test command is what ``.ci/run`` runs; the default session installs only the
test extra; every test file left out of it runs in a session that ``.ci/run`` runs too.

noxfile.py is read, not imported (nox is not installed in the test session's venv).
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from typing import Any

from tests.conftest import REPO

NOXFILE = ast.parse((REPO / "noxfile.py").read_text())
CI_RUN = (REPO / ".ci" / "run").read_text()


def readme_test_command() -> tuple[list[str], list[str]]:
    """The README's second command, ``pip install ... && nox -s ...``, as its two halves."""
    block = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    line = block.splitlines()[1]
    install, run = (shlex.split(part) for part in line.split("&&"))
    return install, run


def ci_commands() -> list[list[str]]:
    """Each command line of .ci/run (comments and shell control lines dropped)."""
    lines = [line.strip() for line in CI_RUN.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def module_lists() -> dict[str, list[str]]:
    """noxfile's module-level lists of strings, starred references to other lists resolved."""
    out: dict[str, list[str]] = {}
    for node in NOXFILE.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.List):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            items: list[str] = []
            for elt in node.value.elts:
                if isinstance(elt, ast.Starred):
                    items += out[ast.unparse(elt.value)]
                else:
                    items.append(ast.literal_eval(elt))
            out[ast.unparse(target)] = items
    return out


def session(name: str) -> ast.FunctionDef:
    return next(f for f in NOXFILE.body if isinstance(f, ast.FunctionDef) and f.name == name)


def calls(fn: ast.FunctionDef, method: str) -> list[ast.Call]:
    return [
        c
        for c in ast.walk(fn)
        if isinstance(c, ast.Call) and ast.unparse(c.func) == f"session.{method}"
    ]


def test_readme_command_is_what_ci_runs() -> None:
    install, run = readme_test_command()
    assert install[:2] == ["pip", "install"] and run[:2] == ["nox", "-s"]
    commands = ci_commands()
    pip = [c for c in commands if c[:5] == ["python3", "-m", "pip", "install", "--quiet"]]
    assert [c[5:] for c in pip if "--upgrade" not in c] == [install[2:]]
    nox_runs = [c[4:] for c in commands if c[:4] == ["python3", "-m", "nox", "-s"]]
    assert run[2:] == ["tests"]
    assert any("tests" in c for c in nox_runs)
    # a failing session fails .ci/run: errexit, and no session's exit code is swallowed
    assert "set -euo pipefail" in CI_RUN
    assert not re.search(r"nox[^\n]*(\|\| *true|; *true)", CI_RUN)


def test_default_session_installs_only_the_test_extra_and_accepts_exit_5() -> None:
    fn = session("tests")
    installs = [[ast.literal_eval(a) for a in c.args] for c in calls(fn, "install")]
    assert installs == [[".[test]"]]
    (run,) = calls(fn, "run")
    codes = next(k.value for k in run.keywords if k.arg == "success_codes")
    assert ast.literal_eval(codes) == [0, 5]  # "no tests collected" is not a failure
    # pytest-xdist, which the session's "-n" needs, is in the test extra it installs
    assert "PARALLEL" in ast.unparse(run)
    assert "-n" in module_lists()["PARALLEL"]
    project: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("pytest-xdist") for r in project["optional-dependencies"]["test"])


def test_every_file_left_out_of_the_default_run_runs_in_a_session_ci_runs() -> None:
    lists = module_lists()
    own = lists["OWN_SESSION"]
    assert own and all((REPO / path).is_file() for path in own)
    ran = {s for c in ci_commands() if c[:4] == ["python3", "-m", "nox", "-s"] for s in c[4:]}
    assert {"lint", "typecheck", "tests", "browser"} <= ran
    covered: set[str] = set()
    for name in ran:
        text = ast.unparse(session(name))
        covered |= {p for lst, paths in lists.items() if lst in text for p in paths}
    assert set(own) <= covered, sorted(set(own) - covered)
    # and the default session really leaves them out
    assert "OWN_SESSION" in ast.unparse(session("tests"))
