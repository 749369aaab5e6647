"""Nox sessions for pricelab. Settings come from pyproject.toml.

    nox -s tests              # default test run (slow tests excluded); pass pytest args after --
    nox -s tests -- -m slow   # the slow tests
    nox -s lint               # ruff
    nox -s typecheck          # mypy on the package
    nox -s bench              # benchmarks (opt-in; writes benchmarks/results.md)
"""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = PYPROJECT["tool"]["pricelab"]["nox"]["python"]

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests excluded unless you pass -m)."""
    # optional engines and trackers are tested for real: spark (Java 17 from .ci/run), mlflow
    session.install(".[test,spark,mlflow]")
    args = session.posargs  # pyproject's addopts exclude slow tests; "-m slow" runs them
    # exit code 5 means "no tests collected": not a failure of the suite
    session.run("pytest", *args, success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff (settings in pyproject.toml)."""
    session.install("ruff")
    session.run("ruff", "check", "pricelab", "tests", "examples", "noxfile.py", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy (settings in pyproject.toml)."""
    session.install(".[dev]")
    session.run("mypy", "pricelab", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks; ratios are measured against references in the same run."""
    session.install(".[test]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
