"""The Dockerfile, checked without a Docker daemon: parsed instruction by instruction, its
build context reproduced from .dockerignore, and its build stage's wheel built for real."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"

dockerfile_parse = pytest.importorskip("dockerfile_parse", reason="needs pricelab[deploy-test]")


def instructions() -> list[dict[str, str]]:
    """Every instruction of the Dockerfile (dockerfile-parse's structure)."""
    parser = dockerfile_parse.DockerfileParser(path=str(DOCKERFILE))
    return [{"instruction": i["instruction"], "value": i["value"]} for i in parser.structure]


def stages() -> list[list[dict[str, str]]]:
    out: list[list[dict[str, str]]] = []
    for ins in instructions():
        if ins["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def _pattern(p: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated paths (Go filepath.Match + **)."""
    out, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):  # zero or more folders
            out += "(?:.*/)?"
            i += 3
        elif p.startswith("**", i):
            out += ".*"
            i += 2
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(f"^{out}$")


def context_files(root: Path = REPO) -> set[str]:
    """Files `docker build .` would send: .dockerignore applied, last matching rule wins."""
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        rules.append((neg, _pattern(line.lstrip("!").strip("/"))))
    kept = set()
    for path in root.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(root).parts[:1]:
            continue
        rel = path.relative_to(root).as_posix()
        parts = rel.split("/")
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        excluded = False
        for neg, rx in rules:
            if any(rx.match(pre) for pre in prefixes):
                excluded = not neg
        if not excluded:
            kept.add(rel)
    return kept


def test_every_stage_uses_the_slim_python_311_base() -> None:
    froms = [s[0]["value"].split()[0] for s in stages()]
    assert froms and all(f == "python:3.11-slim" for f in froms), froms


def test_final_stage_runs_as_the_non_root_user_it_creates() -> None:
    final = stages()[-1]
    users = [i for i in final if i["instruction"] == "USER"]
    assert len(users) == 1
    user = users[0]["value"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and uid != "0" and gid == uid, user
    created = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert f"useradd --system --uid {uid} --gid {gid}" in created
    # nothing runs as root after USER, and the entry point comes after it
    kinds = [i["instruction"] for i in final]
    assert kinds.index("USER") > max(k for k, x in enumerate(kinds) if x in ("RUN", "COPY"))
    assert kinds.index("ENTRYPOINT") > kinds.index("USER")


def test_entry_point_is_the_pricelab_console_script() -> None:
    final = stages()[-1]
    entry = [json.loads(i["value"]) for i in final if i["instruction"] == "ENTRYPOINT"]
    assert entry == [["pricelab"]]  # exec form: signals reach pricelab, exit codes pass through
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["pricelab"] == "pricelab.cli.app:main"


def test_installed_extras_exist_and_include_cloud_storage() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    runs = [
        i["value"] for i in instructions() if i["instruction"] == "RUN" and "pip " in i["value"]
    ]
    named = set()
    for run in runs:
        for m in re.finditer(r"\[([a-z0-9_,-]+)\]", run):
            named |= set(m.group(1).split(","))
    assert {"azure", "s3"} <= named
    assert named <= set(extras), named - set(extras)


def test_no_secret_is_baked_into_the_image() -> None:
    text = DOCKERFILE.read_text()
    env_keys = re.findall(r"(?m)^\s*(?:ENV\s+)?([A-Z_][A-Z0-9_]*)=", text)
    assert env_keys  # the ENV block is found
    for key in env_keys:
        assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD|CONNECTION_STRING|CREDENTIAL", key), key
    assert not any(i["instruction"] in ("ARG",) and "KEY" in i["value"] for i in instructions())


def test_build_context_holds_what_copy_needs_and_nothing_private() -> None:
    ctx = context_files()
    for ins in instructions():
        if ins["instruction"] != "COPY" or ins["value"].startswith("--from"):
            continue
        *sources, _dest = shlex.split(ins["value"])
        for src in sources:
            assert any(f == src or f.startswith(src.rstrip("/") + "/") for f in ctx), src
    assert "pricelab/cli/app.py" in ctx and "data/sample/sales.csv" in ctx
    assert not any(f.startswith(("tests/", ".github/", "deploy/")) for f in ctx - PINS)
    assert ctx >= PINS  # the pinned versions the build installs
    assert not any(f.endswith((".duckdb", ".env")) or "__pycache__" in f for f in ctx)


def test_dockerignore_rules_behave_like_docker(tmp_path: Path) -> None:
    """The matcher above on a made-up tree (so the context test can fail)."""
    for rel in (
        "pyproject.toml",
        "README.md",
        "pricelab/a.py",
        "pricelab/__pycache__/a.pyc",
        "data/sample/sales.csv",
        "data/other.csv",
        "x.duckdb",
        "pricelab/s.duckdb",
        "tests/t.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    shutil.copy(REPO / ".dockerignore", tmp_path / ".dockerignore")
    assert context_files(tmp_path) == {
        "pyproject.toml",
        "README.md",
        "pricelab/a.py",
        "data/sample/sales.csv",
    }


def test_build_stage_makes_an_installable_wheel_with_the_extras(tmp_path: Path) -> None:
    """Replay the build stage's COPY lines into a folder and build the wheel from it."""
    pytest.importorskip("hatchling", reason="needs hatchling to build the wheel")
    src = tmp_path / "src"
    ctx = context_files()
    build = stages()[0]
    for ins in build:
        if ins["instruction"] == "COPY":
            *sources, dest = shlex.split(ins["value"])
            for s in sources:
                assert dest == "./" or (len(sources) == 1 and dest == f"./{s}"), ins
                for f in (f for f in ctx if f == s or f.startswith(s.rstrip("/") + "/")):
                    target = src / f  # every COPY keeps the repository layout under /src
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / f, target)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "w"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next((tmp_path / "w").glob("pricelab-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "pricelab/cli/app.py" in names and "pricelab/urls.py" in names
    assert "pricelab/_sample_data/sales.csv" in names
    assert "pricelab = pricelab.cli.app:main" in entry
    for extra in ("azure", "s3", "gcs"):
        assert f"Provides-Extra: {extra}" in meta
    assert re.search(r"Requires-Dist: adlfs.*extra == .azure.", meta)


CONSTRAINTS = REPO / "deploy" / "constraints.txt"
PINS = {"deploy/constraints.txt"}


def _pins() -> dict[str, str]:
    import re

    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+!\-]+)", line.strip())
            assert m, f"not pinned with ==: {line!r}"
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_build_installs_with_the_pinned_constraints() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "COPY deploy/constraints.txt ./deploy/constraints.txt" in text
    assert '--constraint deploy/constraints.txt ".[azure,s3,gcs]"' in text
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    needed = [*project["dependencies"], *extras["azure"], *extras["s3"], *extras["gcs"]]
    pins = _pins()
    for spec in needed:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (spec, pins[name])


@pytest.mark.slow
def test_constraints_resolve_with_pip(tmp_path: Path) -> None:
    """pip resolves the image's install against the pins (dry run: nothing installed)."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(tmp_path / "r.json"),
            "--constraint",
            str(CONSTRAINTS),
            f"{REPO}[azure,s3,gcs]",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    got = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in report["install"]
    }
    pins = _pins()
    assert {k: v for k, v in got.items() if k != "pricelab"} == {
        k: pins[k] for k in got if k in pins
    }
    assert set(got) - {"pricelab"} <= set(pins)


def _final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stages()[-1]:
        if ins["instruction"] == "ENV":
            for part in shlex.split(ins["value"]):
                key, _, val = part.partition("=")
                env[key] = val
    return env


@pytest.mark.slow
def test_image_ships_the_compiled_kernels_warm(tmp_path: Path) -> None:
    """The final stage's warm-up, replayed: it fills $NUMBA_CACHE_DIR with every compiled
    kernel, so the image's estimate commands load them and compile nothing."""
    env_img = _final_env()
    cache_dir = env_img["NUMBA_CACHE_DIR"]
    run = next(
        i["value"]
        for i in stages()[-1]
        if i["instruction"] == "RUN" and "PRICELAB_JIT=1" in i["value"]
    )
    steps = [s.strip() for s in re.split(r"\s&&\s", run)]
    assert steps[-1] == f"chown -R 10001:10001 {cache_dir}"  # the runtime user's cache
    first = next(k for k, s in enumerate(steps) if s.startswith("pricelab sample"))
    warm = steps[first : steps.index("rm -rf /tmp/warm") + 1]
    cli = f"{shlex.quote(sys.executable)} -m pricelab"
    script = " && ".join(
        s.replace("/tmp/warm", str(tmp_path / "warm"))
        .replace("PRICELAB_JIT=1 pricelab ", f"PRICELAB_JIT=1 {cli} ")
        .replace("pricelab sample", f"{cli} sample")
        for s in warm
    )
    cache = tmp_path / "cache"
    env = {
        **{k: v for k, v in __import__("os").environ.items() if k != "PRICELAB_JIT"},
        "NUMBA_CACHE_DIR": str(cache),
        "PYTHONPATH": str(REPO),
        "PRICELAB_MLFLOW": "",
    }
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "warm").exists()
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    names = " ".join(p.name for p in files)
    assert "ols_jit" in names and "glm_jit" in names, names
    # a container's run: a new database, every model on the compiled kernels, nothing compiled
    db = tmp_path / "night.duckdb"
    subprocess.run(
        [sys.executable, "-m", "pricelab", "sample", "--out", str(tmp_path / "s"), "--db", str(db)],
        env=env,
        check=True,
        capture_output=True,
    )
    for model in ("ols", "poisson", "hierarchical"):
        subprocess.run(
            [sys.executable, "-m", "pricelab", "estimate", "--model", model, "--db", str(db)],
            env={**env, "PRICELAB_JIT": "1"},
            check=True,
            capture_output=True,
        )
    after = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert after == files
