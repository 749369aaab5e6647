"""YAML configuration files (constraints, scenarios, pipeline, monitor): reading, line numbers, key checks.

Every message names the file, the line and the dotted key, e.g.
``c.yaml, line 3: bounds.max_increse_pct: unknown key ...; did you mean 'max_increase_pct'?``
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from pricelab import yamlsafe
from pricelab.errors import ConfigError, InputFileError
from pricelab.io import parse_yaml, read_text

#: longest horizon or window in weeks any config or option accepts (ten years): beyond it a
#: number is a typo, and 1e12 weeks would overflow every date computed from it
MAX_WEEKS = 520


class ConfigContext:
    """File name and key → line lookup for error messages."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source, self.lines = source, lines

    def line(self, path: tuple) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for k in range(len(path), -1, -1):
            if path[:k] in self.lines:
                return self.lines[path[:k]]
        return None

    def fail(self, path: tuple, msg: str) -> ConfigError:
        """A :class:`ConfigError` naming the file, line and key ``path``."""
        line = self.line(path)
        where = self.source + (f", line {line}" if line else "")
        key = ".".join(str(p) for p in path) or "(top level)"
        return ConfigError(f"{where}: {key}: {msg}")


_key = yamlsafe.key_of


def node_lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    """Record the line of every key and item under ``node`` into ``out``.

    Keys are recorded as the parsed data holds them, so a key YAML reads as a bool or a
    number (``on:``, ``2:``) finds its line too.
    """
    out.setdefault(path, node.start_mark.line + 1)  # a key's own line wins over its value's
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                continue
            key = _key(k)
            out[path + (key,)] = k.start_mark.line + 1
            node_lines(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            node_lines(v, path + (i,), out)


def check_keys(
    ctx: ConfigContext, path: tuple, d: Any, allowed: tuple[str, ...], *, what: str = "key"
) -> dict:
    """``d`` as a mapping whose keys are all in ``allowed`` (else the closest one is suggested).

    ``what`` names a key in the message (``unknown {what} 'x'``), e.g. ``"monitor check"``.
    """
    if not isinstance(d, dict):
        raise ctx.fail(path, f"expected a mapping with keys {', '.join(allowed)}, got {d!r}")
    for k in d:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(allowed)}"
            )
            raise ctx.fail(path + (k,), f"unknown {what} '{k}'{hint}")
    return d


def _scalars(node: yaml.Node, path: tuple) -> Iterator[tuple[tuple, yaml.ScalarNode]]:
    """Every scalar under ``node`` (keys too) with the path it sits at."""
    if isinstance(node, yaml.ScalarNode):
        yield path, node
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _scalars(k, path)
            yield from _scalars(v, path + (_key(k) if isinstance(k, yaml.ScalarNode) else None,))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield from _scalars(v, path + (i,))


def parse_config(text: str, source: str) -> tuple[Any, ConfigContext]:
    """Parsed YAML and a context that knows each key's line.

    Raises
    ------
    ConfigError
        A YAML syntax error, or a value YAML cannot build (e.g. the date ``2024-13-01``);
        the message names the file and the line.
    """
    try:
        data, node = parse_yaml(text, source, with_node=True)
    except ValueError as exc:  # a resolved scalar that cannot be built; PyYAML gives no line
        root = yamlsafe.compose(text, source)
        if root is None:
            raise ConfigError(f"{source}: cannot read the YAML: {exc}") from exc
        lines: dict[tuple, int] = {}
        for path, scalar in _scalars(root, ()):
            try:
                SafeConstructor().construct_object(scalar)
            except ValueError as err:
                node_lines(root, (), lines)
                lines[path] = scalar.start_mark.line + 1
                raise ConfigContext(source, lines).fail(
                    path, f"cannot read {scalar.value!r}: {err}"
                ) from exc
        raise ConfigError(f"{source}: cannot read the YAML: {exc}") from exc
    lines = {}
    if node is not None:
        node_lines(node, (), lines)
    return data, ConfigContext(source, lines)


def read_config(path: str | os.PathLike[str], what: str) -> str:
    """The text of a config file or URL; a missing or unreadable one is a ConfigError."""
    try:
        return read_text(path, what=what, max_bytes=yamlsafe.MAX_BYTES)
    except InputFileError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from exc
