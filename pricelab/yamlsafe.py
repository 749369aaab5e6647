"""Bounded YAML: every config file pricelab reads is parsed here.

A configuration file is small. Whatever a file holds, reading it costs bounded time and
memory: files above :data:`MAX_BYTES`, nesting deeper than :data:`MAX_DEPTH` and aliases
that would expand to more than :data:`MAX_NODES` nodes are refused before anything is
built (the "billion laughs" anchor bomb is a 500-byte file). Duplicate keys in a mapping
are an error naming the key and both lines, never "last one wins".
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from pricelab.errors import ConfigError

#: largest config file read (bytes of text)
MAX_BYTES = 128 << 10
#: deepest nesting of mappings and lists
MAX_DEPTH = 64
#: most nodes the document may hold once every alias is expanded
MAX_NODES = 200_000


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader whose composer refuses nesting deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - PyYAML hook
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    f"{self.source}, line {mark.line + 1}: nested deeper than {MAX_DEPTH} "
                    "levels; a pricelab config is a few levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _loader(text: str, source: str) -> Any:
    """libyaml's safe loader when installed (about 10x faster; its own nesting limit keeps
    its recursion shallow, :func:`_check_tree` applies ours), else the bounded pure one."""
    if getattr(yaml, "__with_libyaml__", False):
        return yaml.CSafeLoader(text)
    return _BoundedLoader(text, source)


def key_of(node: yaml.Node) -> Any:
    """A mapping key as the parsed data holds it (``on`` -> True, ``2`` -> 2, ``a`` -> 'a')."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        key = SafeConstructor().construct_object(node)
        hash(key)
    except (yaml.YAMLError, TypeError, ValueError):
        return None
    return key


def _check_tree(root: yaml.Node, source: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, duplicate keys and alias expansion
    beyond :data:`MAX_NODES` (iterative: no recursion, whatever the depth)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_: set[int] = set()
    while stack:
        node, done = stack.pop()
        nid = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                children += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if done:
            open_.discard(nid)
            sizes[nid] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[nid] > MAX_NODES:
                raise ConfigError(
                    f"{source}, line {node.start_mark.line + 1}: aliases expand to more than "
                    f"{MAX_NODES:,} values; refusing to build it"
                )
            continue
        if nid in sizes:
            continue
        if nid in open_:
            raise ConfigError(
                f"{source}, line {node.start_mark.line + 1}: an alias refers to itself "
                "(recursive anchor)"
            )
        if len(open_) >= MAX_DEPTH and children:
            raise ConfigError(
                f"{source}, line {node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} "
                "levels; a pricelab config is a few levels deep"
            )
        open_.add(nid)
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, source)
        stack.append((node, True))
        for c in children:
            if isinstance(c, yaml.ScalarNode):
                sizes[id(c)] = 1  # a leaf: no need to visit it
            elif id(c) not in sizes:
                stack.append((c, False))


def _check_duplicates(node: yaml.MappingNode, source: str) -> None:
    seen: dict[Any, int] = {}
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
            continue
        key = key_of(k)
        line = k.start_mark.line + 1
        if key is None:
            continue
        if key in seen:
            raise ConfigError(
                f"{source}, line {line}: duplicate key '{k.value}' (first on line {seen[key]}); "
                "each key may appear once"
            )
        seen[key] = line


def compose(text: str, source: str) -> yaml.Node | None:
    """The checked node tree of ``text`` (size, depth, aliases, duplicate keys).

    Raises
    ------
    ConfigError
        Too large, too deep, an alias bomb, a duplicate key or a YAML syntax error; the
        message names ``source`` and the line.
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{source}: {len(text):,} characters is too large for a config file "
            f"(limit {MAX_BYTES:,})"
        )
    _flow_depth(text, source)
    loader = _loader(text, source)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax(exc, source, text) from exc
    except RecursionError as exc:  # unreachable with MAX_DEPTH; kept as the last guard
        raise ConfigError(f"{source}: nested too deeply") from exc
    finally:
        loader.dispose()
    if node is not None:
        _check_tree(node, source)
    return node


def _flow_depth(text: str, source: str) -> None:
    """Refuse ``[[[[...`` nesting before PyYAML's scanner (quadratic in flow depth) sees it.

    Brackets inside quoted strings count too: a real config never nests 64 of them.
    """
    depth = 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, i) + 1
                raise ConfigError(
                    f"{source}, line {line}: nested deeper than {MAX_DEPTH} levels; "
                    "a pricelab config is a few levels deep"
                )
        elif ch in "]}" and depth:
            depth -= 1


def load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The data and checked node tree of ``text``; see :func:`compose` for what is refused.

    Raises
    ------
    ConfigError
        As :func:`compose`.
    ValueError
        A scalar YAML resolves but cannot build (the date ``2024-13-01``); callers
        locate it.
    """
    node = compose(text, source)
    if node is None:
        return None, None
    loader = _loader("", source)
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax(exc, source, text) from exc
    finally:
        loader.dispose()
    return data, node


def safe_load(text: str, source: str = "YAML") -> Any:
    """:func:`load` without the node tree."""
    return load(text, source)[0]


def _at(text: str, mark: Any) -> str:
    """The character at ``mark`` in ``text`` ('' past the end)."""
    lines = text.split("\n")
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


def _plain(exc: yaml.YAMLError, text: str) -> str:
    """What is wrong, in the same plain words for libyaml and pure-Python PyYAML (whose
    own messages differ: "mapping values are not allowed here" / "... in this context")."""
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    context = str(getattr(exc, "context", None) or "")
    cmark = getattr(exc, "context_mark", None)
    opened = f" opened on line {cmark.line + 1}" if cmark is not None else ""
    char = _at(text, getattr(exc, "problem_mark", None))
    for what, close, kind in (("sequence", "]", "list"), ("mapping", "}", "mapping")):
        if f"while parsing a flow {what}" in context:
            return f"the {kind}{opened} is not closed: expected ',' or '{close}'"
    if "mapping values are not allowed" in problem:
        return "a ':' where no key can start; quote a value that contains ': '"
    if "tab character" in problem or ("cannot start any token" in problem and char == "\t"):
        return "a tab character; indent with spaces"
    if "cannot start any token" in problem:
        return f"the character {char!r} cannot start a value; quote the value"
    if "while scanning a quoted scalar" in context:
        return f"the quoted string{opened} is not closed"
    if "undefined alias" in problem:
        return "an alias (*name) with no anchor (&name) before it"
    if "while parsing a block mapping" in context:
        return f"a line that does not fit the mapping{opened}: check its indentation"
    if "found another document" in problem:
        return "a second document ('---'); a config file holds one"
    return problem


def _syntax(exc: yaml.YAMLError, source: str, text: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigError(f"{source}{where}: YAML syntax error: {_plain(exc, text)}")
