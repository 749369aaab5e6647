"""Nox sessions for pricelab. Settings come from pyproject.toml.

nox -s tests              # default test run (slow tests excluded); pass pytest args after --
nox -s tests -- -m slow   # the slow tests
nox -s lint               # ruff
nox -s typecheck          # mypy on the package
nox -s bench              # benchmarks (opt-in; writes benchmarks/results.md)
nox -s deploy             # cloud storage + deployment artifacts incl. slow ones (opt-in)
nox -s airflow            # the Airflow DAG in Airflow's own DagBag (opt-in, ~300 MB)
"""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = PYPROJECT["tool"]["pricelab"]["nox"]["python"]

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests excluded unless you pass -m)."""
    # optional engines and trackers are tested for real: spark (Java 17 from .ci/run), mlflow
    # cloud storage (Azurite via npm, moto's S3 server) and deployment checks: deploy-test
    session.install(".[test,spark,mlflow,deploy-test]")
    args = session.posargs  # pyproject's addopts exclude slow tests; "-m slow" runs them
    # exit code 5 means "no tests collected": not a failure of the suite
    session.run("pytest", *args, success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff (settings in pyproject.toml)."""
    session.install("ruff==0.17.6")
    paths = ["pricelab", "tests", "examples", "benchmarks", "noxfile.py"]
    session.run("ruff", "check", *paths, *session.posargs)
    session.run("ruff", "format", "--check", *paths)


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


DEPLOY_TESTS = [
    "tests/test_storage_paths.py",
    "tests/test_storage_cloud.py",
    "tests/test_deploy_docker.py",
    "tests/test_deploy_k8s.py",
    "tests/test_deploy_databricks.py",
    "tests/test_deploy_ci.py",
    "tests/test_deploy_dvc.py",
]


@nox.session(python=PYTHON, default=False)
def deploy(session: nox.Session) -> None:
    """Cloud storage against Azurite and moto's S3 server, and the deployment artifacts
    (Dockerfile, Kubernetes, Databricks, DVC repro, CI workflow), slow tests included."""
    import os
    from pathlib import Path

    session.install(".[deploy-test]", "dvc>=3.50")
    cache = Path(os.environ.get("PRICELAB_TEST_CACHE", Path.home() / ".cache" / "pricelab"))
    if not (cache / "azurite" / "node_modules" / ".bin" / "azurite-blob").exists():
        session.run(
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(cache / "azurite"),
            "azurite@3.35.0",
            external=True,
        )
    session.run(
        "pytest",
        *DEPLOY_TESTS,
        "-m",
        "slow or not slow",
        *session.posargs,
        env={"PRICELAB_TEST_CACHE": str(cache)},
    )


@nox.session(python=PYTHON, default=False)
def airflow(session: nox.Session) -> None:
    """The Airflow DAG loaded by Airflow's DagBag (Airflow is ~300 MB: opt-in)."""
    session.install(".[test]", "apache-airflow>=2.9")
    session.run(
        "pytest",
        "tests/test_deploy_airflow.py",
        *session.posargs,
        env={"PRICELAB_AIRFLOW_PYTHON": session.virtualenv.bin + "/python"},
    )
