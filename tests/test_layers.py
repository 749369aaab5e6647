"""The package's imports: no cycles between modules, and no import from a lower layer up.

Every ``import`` / ``from ... import`` of every module under ``pricelab/`` counts, lazy
ones inside functions too (only ``if TYPE_CHECKING:`` blocks are left out: they never
run). The layers, lowest first, are the ones docs/DEVELOPING.md draws; a module may import
modules of its own layer and of the layers below.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pricelab"

#: lowest first; a name is a top-level module/subpackage of pricelab, or a dotted module
#: for the few modules that sit in another layer than their package
LAYERS: list[tuple[str, set[str]]] = [
    (
        "files",
        {
            "errors",
            "_resources",
            "_alloc",
            "transient",
            "staged",
            "urls",
            "io",
            "filecheck",
            "yamlsafe",
            "configfile",
            "quality",
            "sample",
        },
    ),
    ("store", {"store"}),
    ("estimate", {"elasticity", "experiment", "engines"}),
    ("demand", {"demand"}),
    ("decide", {"optimize", "markdown", "simulate"}),
    ("report", {"report", "monitor", "registry", "tracking"}),
    ("commands", {"api"}),  # one library call per command
    ("pipeline", {"pipeline"}),  # runs the commands in order
    # what a user calls: the api package (re-exports), the pipeline command, the CLI
    ("entry", {"api.__init__", "api.production", "api.demo", "cli", "__main__", "__init__"}),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts)  # "optimize.solve", "api.__init__", "__init__"


def _package_of(name: str) -> list[str]:
    parts = name.split(".")
    return parts[:-1]


def _known(name: str, modules: set[str]) -> str | None:
    """The module (as named by :func:`_module_name`) that ``pricelab.<name>`` refers to."""
    if name in modules:
        return name
    if f"{name}.__init__" in modules:
        return f"{name}.__init__"
    return None


def _imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(x) for x in ast.walk(node))
    me = _module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(me)[: len(_package_of(me)) - (node.level - 1)]
                mod = ".".join(["pricelab", *base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            # ``from pricelab.api import data`` imports the submodule pricelab.api.data;
            # ``from pricelab.api import estimate`` (a function) the package pricelab.api
            rel = mod.removeprefix("pricelab").lstrip(".")
            for a in node.names:
                sub = f"{rel}.{a.name}" if rel else a.name
                targets.append(f"{mod}.{a.name}" if _known(sub, modules) else mod)
        for t in targets:
            if t != "pricelab" and not t.startswith("pricelab."):
                continue
            name = (
                _known(t.removeprefix("pricelab").lstrip("."), modules) if t != "pricelab" else None
            )
            if name and name != me:
                out.add(name)
    return out


def _graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def _layer(module: str) -> int:
    best = None
    for i, (_, names) in enumerate(LAYERS):
        for n in names:
            hit = module == n or module.startswith(n + ".")
            # the longest (most specific) name wins
            if hit and (best is None or len(n) > best[1]):
                best = (i, len(n))
    assert best is not None, f"pricelab.{module} is in no layer: add it to LAYERS"
    return best[0]


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        _layer(module)


def test_no_upward_imports() -> None:
    bad = []
    for module, deps in _graph().items():
        for dep in deps:
            if _layer(dep) > _layer(module):
                bad.append(
                    f"pricelab.{module} ({LAYERS[_layer(module)][0]}) imports "
                    f"pricelab.{dep} ({LAYERS[_layer(dep)][0]})"
                )
    assert bad == [], "\n".join(sorted(bad))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ importing its own modules, and those importing the package's
    # names back through it, is one unit: the package; every other loop is a cycle
    cyc = _cycle(graph)
    assert cyc is None, "import cycle: " + " -> ".join(f"pricelab.{m}" for m in cyc or [])


def test_the_checks_can_fail() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _layer("cli.app") > _layer("optimize.solve") > _layer("store.db")
