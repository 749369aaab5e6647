"""Config YAML costs bounded time and memory: bombs, depth, size and duplicate keys are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pricelab import yamlsafe
from pricelab.configfile import parse_config
from pricelab.errors import ConfigError
from tests.conftest import CliResult


def bomb(levels: int = 9) -> str:
    """The 490-byte anchor bomb of the issue: 9**9 leaves once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    lines.append(f"frozen: *a{levels}")
    return "\n".join(lines) + "\n"


def deep(n: int) -> str:
    return "frozen: " + "[" * n + "]" * n + "\n"


CASES = {
    "alias bomb": (bomb(), "aliases expand to more than"),
    "deep flow": (deep(20_000), "nested deeper than 64"),
    "deep block": (
        "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n",
        "nested deeper",
    ),
    "duplicate key": (
        "objective: profit\nhorizon_weeks: 4\nobjective: revenue\n",
        "line 3: duplicate key 'objective' (first on line 1)",
    ),
    "nested duplicate": (
        "bounds:\n  max_increase_pct: 5\n  max_increase_pct: 50\n",
        "line 3: duplicate key 'max_increase_pct'",
    ),
    "recursive anchor": ("frozen: &a [*a]\n", "recursive anchor"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_anything_is_built(case: str) -> None:
    text, message = CASES[case]
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="c.yaml") as err:
        parse_config(text, "c.yaml")
    assert message in str(err.value)
    assert time.perf_counter() - t0 < 5


def test_size_limit_before_reading(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("frozen:\n" + "  - ITEM-000001\n" * (yamlsafe.MAX_BYTES // 16 + 10))
    t0 = time.perf_counter()
    res = cli("optimize", "--db", tmp_path / "x.duckdb", "--constraints", big)
    assert res.exit_code == 2, res.stderr
    assert "too large" in res.stderr and "big.yaml" in res.stderr
    assert time.perf_counter() - t0 < 30  # command start-up on a busy machine; was minutes
    with pytest.raises(ConfigError, match="too large"):
        yamlsafe.load("x: " + "y" * (yamlsafe.MAX_BYTES + 1), "t.yaml")


def test_ordinary_anchors_and_merge_keys_still_work() -> None:
    data, _ = parse_config(
        "base: &b {max_increase_pct: 5}\nbounds:\n  <<: *b\n  max_decrease_pct: 10\n"
        "more: [*b, *b]\n",
        "c.yaml",
    )
    assert data["bounds"] == {"max_increase_pct": 5, "max_decrease_pct": 10}
    assert data["more"] == [{"max_increase_pct": 5}] * 2


@pytest.mark.parametrize(
    ("command", "case"),
    [("optimize", "alias bomb"), ("simulate", "alias bomb"), ("simulate", "deep block")]
    + [("optimize", "duplicate key")],
)
def test_cli_exit_2_with_file_and_line(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, case: str, command: str
) -> None:
    text, message = CASES[case]
    f = tmp_path / "c.yaml"
    f.write_text(text)
    opt = "--constraints" if command == "optimize" else "--scenario"
    res = cli(command, "--db", loaded_db, opt, f)
    assert res.exit_code == 2, res.stderr
    assert message in res.stderr and "c.yaml" in res.stderr


#: syntax errors -> the one message both parsers give (file, line, column, plain words)
SYNTAX = {
    "a: 1\nb:\n  - name: [gb\n    x: 2\n": "line 4, column 6: YAML syntax error: the list "
    "opened on line 3 is not closed: expected ',' or ']'",
    "a: {b: 1\n": "line 2, column 1: YAML syntax error: the mapping opened on line 1 is not "
    "closed: expected ',' or '}'",
    "a: 1\n b: 2\n": "line 2, column 3: YAML syntax error: a ':' where no key can start; "
    "quote a value that contains ': '",
    "a:\n\tb: 1\n": "line 2, column 1: YAML syntax error: a tab character; indent with spaces",
    "a: 1\n\tb: 2\n": "line 2, column 1: YAML syntax error: a tab character; indent with spaces",
    "a: @x\n": "line 1, column 4: YAML syntax error: the character '@' cannot start a value; "
    "quote the value",
    'a: "abc\nb: 2\n': "line 3, column 1: YAML syntax error: the quoted string opened on line "
    "1 is not closed",
    "a: *x\n": "line 1, column 4: YAML syntax error: an alias (*name) with no anchor (&name) "
    "before it",
    "a: 1\n- b\n": "line 2, column 1: YAML syntax error: a line that does not fit the mapping "
    "opened on line 1: check its indentation",
    "a: 1\n---\nb: 2\n": "line 2, column 1: YAML syntax error: a second document ('---'); a "
    "config file holds one",
}
LOADERS = ["SafeLoader"] + (["CSafeLoader"] if hasattr(__import__("yaml"), "CSafeLoader") else [])


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("text", list(SYNTAX), ids=range(len(SYNTAX)))
def test_syntax_errors_read_the_same_with_either_parser(
    text: str, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    # libyaml (CSafeLoader) when installed, else the pure-Python SafeLoader: force each
    monkeypatch.setattr(yaml, "__with_libyaml__", loader == "CSafeLoader", raising=False)
    with pytest.raises(ConfigError) as err:
        yamlsafe.safe_load(text, "c.yaml")
    assert str(err.value) == f"c.yaml, {SYNTAX[text]}"
