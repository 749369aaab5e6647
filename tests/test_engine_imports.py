"""Engines use only the public partition API of :mod:`pricelab.elasticity`.

Every import of ``pricelab.elasticity`` in ``pricelab/engines/*.py`` must name a public
member of ``pricelab.elasticity.__all__`` (or of :mod:`pricelab.elasticity.batched`'s
``__all__``, the same set): no internal module (``design``, ``groupfit``, ``model``...)
and no underscore name, so the rule cannot silently break again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pricelab.elasticity as E
from pricelab.elasticity import batched

ENGINES = Path(__file__).resolve().parents[1] / "pricelab" / "engines"
PUBLIC = set(E.__all__) | set(batched.__all__)
ALLOWED_MODULES = {"pricelab.elasticity", "pricelab.elasticity.batched"}


def elasticity_imports(source: str) -> list[tuple[int, str, str | None]]:
    """``(line, module, name)`` of every import of ``pricelab.elasticity`` in ``source``
    (``name`` None for a plain ``import module``), at any depth (also inside functions)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module == "pricelab" or node.module.startswith("pricelab.elasticity"))
        ):
            for alias in node.names:
                if node.module == "pricelab" and alias.name != "elasticity":
                    continue
                found.append((node.lineno, node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pricelab.elasticity"):
                    found.append((node.lineno, alias.name, None))
    return found


def violations(source: str) -> list[str]:
    """Imports of ``pricelab.elasticity`` that are not of a public name."""
    bad = []
    for line, module, name in elasticity_imports(source):
        if name is None:
            ok = module == "pricelab.elasticity"  # ``import pricelab.elasticity``
        elif module == "pricelab":
            ok = True  # ``from pricelab import elasticity``
        else:
            ok = module in ALLOWED_MODULES and name in PUBLIC
        if not ok:
            bad.append(f"line {line}: {module} -> {name}")
    return bad


def test_public_api_is_documented_and_resolves() -> None:
    assert set(batched.__all__) <= set(E.__all__)
    for name in PUBLIC:
        assert not name.startswith("_"), name
        obj = getattr(E, name)
        if callable(obj):
            doc = obj.__doc__ or ""
            assert "Parameters\n" in doc or "Attributes\n" in doc, f"{name}: no numpydoc"


@pytest.mark.parametrize("path", sorted(ENGINES.glob("*.py")), ids=lambda p: p.name)
def test_engines_import_only_public_elasticity_names(path: Path) -> None:
    assert violations(path.read_text()) == []


def test_engines_do_use_the_partition_api() -> None:
    # the rule above is not vacuous: the Spark tasks do import from pricelab.elasticity
    found = elasticity_imports((ENGINES / "_tasks.py").read_text())
    assert {"fit_groups", "group_stats", "shrink_groups", "wrap_results"} <= {
        n for _, _, n in found
    }


@pytest.mark.parametrize(
    "source",
    [
        "from pricelab.elasticity import design as D",
        "from pricelab.elasticity.groupfit import fit_poisson",
        "def f():\n    from pricelab.elasticity.model import _wrap\n",
        "from pricelab.elasticity.hierarchical import shrink",
        "from pricelab.elasticity import _something",
        "import pricelab.elasticity.design",
        "from pricelab.elasticity.batched import _LEVEL_ATTRS",
    ],
)
def test_private_imports_are_caught(source: str) -> None:
    assert len(violations(source)) == 1


def test_public_imports_pass() -> None:
    assert (
        violations(
            "from pricelab.elasticity import MODELS, fit_groups\n"
            "from pricelab.elasticity.batched import shrink_groups\n"
            "import pricelab.elasticity\nfrom pricelab import elasticity\n"
        )
        == []
    )
