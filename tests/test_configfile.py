"""The shared config-file helpers: key lines, key checks, unreadable values."""

from __future__ import annotations

import pytest

from pricelab.configfile import check_keys, parse_config
from pricelab.errors import ConfigError

TEXT = """\
# comment
top:
  on: 1
  2: two
  block:
    - a
    - {x: 1}
flat: 3
"""


def test_lines_of_keys_items_and_non_string_keys() -> None:
    data, ctx = parse_config(TEXT, "f.yaml")
    assert data == {"top": {True: 1, 2: "two", "block": ["a", {"x": 1}]}, "flat": 3}
    assert ctx.lines == {
        (): 2,
        ("top",): 2,
        ("top", True): 3,
        ("top", 2): 4,
        ("top", "block"): 5,
        ("top", "block", 0): 6,
        ("top", "block", 1): 7,
        ("top", "block", 1, "x"): 7,
        ("flat",): 8,
    }
    # an unlisted path falls back to its nearest ancestor's line
    assert ctx.line(("top", "block", 1, "y")) == 7


def test_check_keys_names_the_kind_of_key() -> None:
    data, ctx = parse_config(TEXT, "f.yaml")
    with pytest.raises(ConfigError) as exc:
        check_keys(ctx, ("top",), data["top"], ("block", "of"), what="setting")
    assert (
        str(exc.value) == "f.yaml, line 3: top.True: unknown setting 'True'; valid keys: block, of"
    )
    with pytest.raises(ConfigError) as exc:
        check_keys(ctx, (), data, ("top", "flats"))
    assert str(exc.value) == "f.yaml, line 8: flat: unknown key 'flat'; did you mean 'flats'?"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: 1\nb:\n  - 2024-02-30\n",
            "f.yaml, line 3: b.0: cannot read '2024-02-30': day is out of range for month",
        ),
        (
            "a: 1\n2024-13-01: x\n",
            "f.yaml, line 2: (top level): cannot read '2024-13-01': month must be in 1..12",
        ),
    ],
)
def test_a_value_yaml_cannot_build_is_a_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "f.yaml")
    assert str(exc.value) == message
