"""Every command documents itself; global options behave."""

from __future__ import annotations

import typer.main

from pricelab import __version__
from pricelab.cli.app import app


def _commands(group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, path)


def test_every_command_has_help(cli) -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    seen = []
    for path, cmd in _commands(root):
        seen.append(" ".join(path))
        assert (cmd.help or "").strip(), f"'pricelab {' '.join(path)}' has no help text"
        res = cli(*path, "--help")
        assert res.exit_code == 0, path
        assert "Usage:" in res.stdout
        for param in cmd.params:
            if type(param).__name__.endswith("Option") and not getattr(param, "hidden", False):
                assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} lacks help"
    assert {"ingest", "validate", "demo", "runs list", "runs show"} <= set(seen)


def test_data_commands_take_the_contract_options() -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    for path, cmd in _commands(root):
        if hasattr(cmd, "commands"):
            continue
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert {"--db", "--json", "--debug"} <= opts, path


def test_version(cli) -> None:
    res = cli("--version")
    assert res.exit_code == 0
    assert res.stdout.strip() == f"pricelab {__version__}"


def test_unknown_option_is_usage_error(cli) -> None:
    res = cli("ingest", "--nope")
    assert res.exit_code == 2


def test_debug_shows_traceback(cli, tmp_path) -> None:
    import pytest

    from pricelab.errors import InputFileError

    with pytest.raises(InputFileError):
        cli("ingest", "--db", tmp_path / "x.duckdb", "--sales", tmp_path / "no.csv", "--debug")
