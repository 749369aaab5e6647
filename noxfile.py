"""Nox sessions for pricelab. Settings come from pyproject.toml.

nox -s tests              # default test run: installs only the test extra (slow tests and the
                          # sessions below excluded); pass pytest args after --
nox -s tests -- -m slow   # the slow tests
nox -s spark              # the Spark engine against a real local Spark (needs Java 17)
nox -s mlflow             # MLflow tracking against a real local MLflow store
nox -s fuzz               # property tests with fresh random examples (opt-in)
nox -s lint               # ruff
nox -s typecheck          # mypy on the package
nox -s browser            # the HTML report in headless Chromium (needs chromium, chromium-driver)
nox -s bench              # benchmarks (opt-in; writes benchmarks/results.md)
nox -s deploy             # cloud storage + deployment artifacts incl. slow ones (opt-in)
nox -s airflow            # the Airflow DAG in Airflow's own DagBag (opt-in, ~300 MB)
"""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = PYPROJECT["tool"]["pricelab"]["nox"]["python"]

nox.options.sessions = ["lint", "typecheck", "tests", "browser"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
#: uv creates the venv and installs into it when it is there (``pip install "nox[uv]"``, the
#: README's command), else virtualenv + pip. Installing the test extra into a new venv:
#: uv 8.9 s wall (4.8 CPU s), pip 138 s (56 CPU s, most of it compiling every package's
#: bytecode). The sessions whose tests call pip (deploy) or need pip's resolver (airflow,
#: spark, mlflow: not tried with uv) keep virtualenv.
FAST = "uv|virtualenv"
#: uv compiles no bytecode at install (pip does, every module: ~25 CPU s of pip's 56). Python
#: then writes it on first import, unless PYTHONDONTWRITEBYTECODE is set (as in CI's
#: containers): every CLI process the tests start would compile its imports again. Sessions
#: that run pricelab write bytecode into their own venv.
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


SPARK_TESTS = [
    "tests/test_engine_spark.py",
    "tests/test_engine_spark_sources.py",
    # examples/databricks/pipeline_job.json's task run on the sample with local Spark
    "tests/test_deploy_databricks_spark.py",
    # Delta sources without a JVM (deltalake: the delta extra this session installs)
    "tests/test_sources_delta.py",
]
MLFLOW_TESTS = ["tests/test_tracking_mlflow.py", "tests/test_tracking_pipeline_mlflow.py"]
AIRFLOW_TESTS = ["tests/test_deploy_airflow.py"]
DEPLOY_TESTS = [
    "tests/test_urls.py",
    "tests/test_storage_cloud.py",
    "tests/test_deploy_docker.py",
    "tests/test_deploy_k8s.py",
    "tests/test_deploy_databricks.py",
    "tests/test_deploy_ci.py",
    "tests/test_deploy_dvc.py",
    # object-storage outages (s3fs, adlfs) and the month of nightly runs that includes one
    "tests/test_transient.py",
    "tests/test_nightly_month.py",
]
#: one pytest-xdist worker per core, each test file on one worker (its module fixtures are
#: built once, as in a serial run); ``nox -s tests -- -n 0`` runs serially
PARALLEL = ["-n", "auto", "--dist", "loadfile"]
#: test files that run in their own session (with their own extras), not in ``tests``
OWN_SESSION = [*SPARK_TESTS, *MLFLOW_TESTS, *AIRFLOW_TESTS, *DEPLOY_TESTS]


@nox.session(python=PYTHON, venv_backend=FAST)
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests excluded unless you pass -m).

    Installs only the test extra: Spark, MLflow, cloud storage, deployment, DVC and Airflow
    tests have their own sessions below (``.ci/run`` runs them after this one).
    """
    session.install(".[test]")
    ignore = [f"--ignore={path}" for path in OWN_SESSION]
    # pyproject's addopts exclude slow tests; "-m slow" runs them
    # exit code 5 means "no tests collected": not a failure of the suite
    session.run(
        "pytest", *PARALLEL, *ignore, *session.posargs, success_codes=[0, 5], env=WRITE_BYTECODE
    )


@nox.session(python=PYTHON, default=False, venv_backend=FAST)
def fuzz(session: nox.Session) -> None:
    """The Hypothesis property tests with new random examples (the default run is derandomized).

    A failure prints the example and a ``@reproduce_failure`` blob: add the example to the
    test with ``@example`` when it is fixed.
    """
    session.install(".[test]")
    session.env["HYPOTHESIS_PROFILE"] = "explore"
    files = [
        "tests/test_optimize_properties.py",
        "tests/test_optimize_avg_change.py",
        "tests/test_optimize_coupled.py",
        "tests/test_elasticity_properties.py",
        "tests/test_experiment_design.py",
        "tests/test_flagsets.py",
    ]
    session.run("pytest", *files, *session.posargs)


@nox.session(python=PYTHON, default=False)
def spark(session: nox.Session) -> None:
    """The Spark engine on a real local Spark session (Java 17 from .ci/run); its sources
    on moto's S3 server (s3fs) and Delta tables (deltalake)."""
    session.install(".[test,spark,s3,delta]", "moto[server]>=5")
    session.run("pytest", *SPARK_TESTS, *session.posargs)


@nox.session(python=PYTHON, default=False)
def mlflow(session: nox.Session) -> None:
    """MLflow tracking against a real local MLflow store (sqlite)."""
    session.install(".[test,mlflow]")
    session.run("pytest", *MLFLOW_TESTS, *session.posargs)


@nox.session(python=PYTHON, venv_backend=FAST)
def browser(session: nox.Session) -> None:
    """The HTML report in headless Chromium (system chromium + chromium-driver; .ci/run
    installs them with apt-get): click, sort, filter, screenshot."""
    session.install(".[test,browser]")
    session.run(
        "pytest",
        "-m",
        "browser",
        "tests/test_report_browser.py",
        *session.posargs,
        env={"PRICELAB_REQUIRE_BROWSER": "1", **WRITE_BYTECODE},
    )


@nox.session(python=PYTHON, venv_backend=FAST)
def lint(session: nox.Session) -> None:
    """Lint with ruff (settings in pyproject.toml)."""
    session.install("ruff==0.17.6")
    paths = ["pricelab", "tests", "examples", "benchmarks", "noxfile.py"]
    session.run("ruff", "check", *paths, *session.posargs)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python=PYTHON, venv_backend=FAST)
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy (settings in pyproject.toml)."""
    session.install(".[dev]")
    session.run("mypy", "pricelab", *session.posargs)


@nox.session(python=PYTHON, default=False, venv_backend=FAST)
def bench(session: nox.Session) -> None:
    """Run the benchmarks; ratios are measured against references in the same run."""
    session.install(".[test]")
    # bytecode written once, as an installed package has it: without it every fresh process
    # the benchmarks time compiles its imports again (the ols command +1.6 CPU s, 4 Dec)
    session.run("python", "benchmarks/run_all.py", *session.posargs, env=WRITE_BYTECODE)


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
        *AIRFLOW_TESTS,
        *session.posargs,
        env={"PRICELAB_AIRFLOW_PYTHON": session.virtualenv.bin + "/python"},
    )
