"""Option values of the common plain types converted without pydantic (start-up time).

typer converts every option value through a pydantic ``TypeAdapter``; importing pydantic
for it costs about 0.13 CPU s per command, a quarter of the bare baseline query's whole
process (``benchmarks/bench_simulate.py --cli``). :func:`plain_params` gives the options
annotated ``str``, ``bool``, ``int`` or ``Path`` (or ``X | None``) without a parser or
bounds a converter that returns what typer's own one returns for an ordinary value (a
``str`` as given, a flag's bool, a decimal integer, a ``Path`` then checked by typer's own
path checks), and hands any other value to typer's converter, so errors and edge cases
read exactly as typer writes them.
``tests/test_cli_params.py`` compares the two on every option of every command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_INT = re.compile(r"-?[0-9]{1,18}")  # what int() and pydantic read alike, within int64

try:  # typer >= 0.29 converts through pydantic; older releases have no such step
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_path
except ImportError:  # pragma: no cover - another typer: its own conversion stays
    RuntimeParam = None  # type: ignore[assignment,misc]


def _plain(value: Any, annotation: Any) -> Any:
    """The converted value, or ``NotImplemented`` when typer's converter must decide."""
    if annotation is str:
        if type(value) is str:
            try:
                value.encode("utf-8")  # lone surrogates: let typer say what it says
            except UnicodeEncodeError:
                return NotImplemented
            return value
    elif annotation is bool:  # a flag's value (typer converts strings from the environment)
        if type(value) is bool:
            return value
    elif annotation is int:
        if type(value) is int:
            return value
        if type(value) is str and _INT.fullmatch(value):
            return int(value)
    elif annotation is Path:
        if isinstance(value, Path):
            return value
        if type(value) is str and value and "\0" not in value:
            return Path(value)  # what pydantic makes of it; typer's checks follow
    return NotImplemented


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        """typer's conversion of an option, done without pydantic for ordinary values."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            out = _plain(value, self.annotation)
            if out is NotImplemented:  # typer's own converter (pydantic), as without this
                full = build_runtime_param(param.type_descriptor)
                return full._coerce_value(value, param=param, ctx=ctx)
            if self.annotation is Path:  # typer's own checks (exists, readable...)
                return coerce_cli_path(
                    out, self.parameter_info, path_type=Path, param=param, ctx=ctx
                )
            return out


def _is_plain(param: Any) -> bool:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or getattr(param, "_runtime_param", False) is not None:
        return False
    if param.multiple or param.nargs != 1:
        return False
    info = desc.parameter_info
    if desc.annotation not in (str, bool, int, Path) or desc.file_annotation is not None:
        return False
    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return False
    if desc.annotation is int:
        return info.min is None and info.max is None and not info.clamp
    return desc.annotation is not Path or info.path_type is None


def plain_options(params: Any) -> None:
    """Give the plain ones of ``params`` (a command's options) the converter above."""
    if RuntimeParam is None:  # pragma: no cover - see the import
        return
    for param in params:
        if _is_plain(param):
            desc = param.type_descriptor
            param._runtime_param = PlainParam(desc.parameter_info, desc.annotation)


def plain_params(command: Any, ctx: Any = None) -> None:
    """:func:`plain_options` for ``command`` and every command under it; given the
    parent's context, also for their ``--help`` options (made once per command, from the
    help option names a subcommand's context inherits)."""
    plain_options(command.get_params(ctx) if ctx is not None else command.params)
    for sub in getattr(command, "commands", {}).values():
        plain_params(sub, ctx)
