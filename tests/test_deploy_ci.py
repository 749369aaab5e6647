""".github/workflows/ci.yml: valid for GitHub Actions and running the project's nox sessions."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def nox_sessions() -> set[str]:
    """Session names declared in noxfile.py (read, not imported)."""
    tree = ast.parse((REPO / "noxfile.py").read_text())
    names = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for dec in fn.decorator_list:
            call = dec if isinstance(dec, ast.Call) else None
            target = call.func if call else dec
            if ast.unparse(target) in ("nox.session", "session"):
                named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
                names.add(
                    named[0].value if named and isinstance(named[0], ast.Constant) else fn.name
                )
    return names


def run_lines() -> list[str]:
    return [s["run"] for job in workflow()["jobs"].values() for s in job["steps"] if "run" in s]


def test_workflow_matches_the_github_actions_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    check = pytest.importorskip(
        "check_jsonschema",
        reason="needs check-jsonschema (its vendored SchemaStore copy of the workflow schema)",
    )
    schema_file = (
        Path(check.__file__).parent / "builtin_schemas" / "vendor" / "github-workflows.json"
    )
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(workflow())
    ]
    assert errors == []
    bad = workflow()
    bad["jobs"]["lint"]["runs_on"] = bad["jobs"]["lint"].pop("runs-on")
    assert list(validator.iter_errors(bad))  # the schema catches a misspelled key


def test_workflow_runs_lint_typecheck_and_tests_with_the_projects_python() -> None:
    sessions = [m.group(1) for line in run_lines() for m in re.finditer(r"nox -s (\w[\w-]*)", line)]
    assert {"lint", "typecheck", "tests"} <= set(sessions)
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pricelab"]["nox"][
        "python"
    ]
    for job in workflow()["jobs"].values():
        setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
        assert [s["with"]["python-version"] for s in setup] == [python]
    assert workflow()["permissions"] == {"contents": "read"}


def test_every_session_the_workflow_runs_exists_in_the_noxfile() -> None:
    wanted = {m.group(1) for line in run_lines() for m in re.finditer(r"nox -s (\w[\w-]*)", line)}
    missing = wanted - nox_sessions()
    assert {"lint", "typecheck", "tests"} <= nox_sessions()
    assert not missing, f"noxfile.py has no session(s) {sorted(missing)}"


def test_integration_job_caches_the_azurite_version_the_tests_install() -> None:
    text = (REPO / "tests" / "test_storage_cloud.py").read_text()
    version = re.search(r'AZURITE_VERSION = "([\d.]+)"', text)
    assert version is not None
    job = workflow()["jobs"]["integration"]
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert f"azurite-{version.group(1)}-" in cache["with"]["key"]
    assert job["env"]["PRICELAB_TEST_CACHE"].endswith(cache["with"]["path"])
    node = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-node@"))
    assert int(node["with"]["node-version"]) >= 18  # azurite 3.35 supports node >= 10
