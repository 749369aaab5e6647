from pathlib import Path

import pytest

from pricelab.errors import ConfigError
from pricelab.optimize import load_constraints, loads_constraints

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "constraints.yaml"


def test_example_file_parses():
    c = load_constraints(EXAMPLE)
    assert c.objective == "profit" and c.rules.bounds.max_increase_pct == 15
    assert c.overrides and c.overrides[0].where == {"category": ("bags",)}


def test_unknown_key_suggests_closest_and_names_line(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("objective: profit\nbounds:\n  max_increse_pct: 10\n")
    with pytest.raises(ConfigError) as exc:
        load_constraints(f)
    msg = str(exc.value)
    assert str(f) in msg and "line 3" in msg and "bounds.max_increse_pct" in msg
    assert "did you mean 'max_increase_pct'" in msg


def test_top_level_typo_and_override_typo():
    with pytest.raises(ConfigError, match="did you mean 'min_margin_pct'"):
        loads_constraints("min_margn_pct: 20\n")
    with pytest.raises(ConfigError, match=r"line 3: overrides.0.where.categry.*'category'"):
        loads_constraints("overrides:\n  - where:\n      categry: bags\n    min_margin_pct: 5\n")


def test_wrong_types_and_ranges():
    with pytest.raises(ConfigError, match=r"line 1: min_margin_pct: expected a number, got 'high'"):
        loads_constraints("min_margin_pct: high\n")
    with pytest.raises(ConfigError, match="objective: expected 'profit' or 'revenue'"):
        loads_constraints("objective: margin\n")
    with pytest.raises(ConfigError, match="max_decrease_pct: must be < 100"):
        loads_constraints("bounds: {max_decrease_pct: 120}\n")
    with pytest.raises(ConfigError, match="ending 5 must be smaller than step 5"):
        loads_constraints("ladder: {step: 5, ending: 5}\n")
    with pytest.raises(ConfigError, match="inventory: expected true or false"):
        loads_constraints("inventory: 3\n")


def test_yaml_syntax_error_names_line():
    with pytest.raises(ConfigError) as err:
        loads_constraints("bounds:\n  max_increase_pct: [10\nmin_margin_pct: 3\n")
    assert str(err.value) == (
        "<string>, line 3, column 15: YAML syntax error: the list opened on line 2 is not "
        "closed: expected ',' or ']'"
    )


def test_missing_file_and_dict_input():
    with pytest.raises(ConfigError, match="constraints file not found"):
        load_constraints("/nonexistent/c.yaml")
    c = load_constraints({"ladder": {"ending": 0.99}, "frozen": ["A", "B"]})
    assert c.rules.ladder.spacing == 1.0 and c.rules.ladder.offset == 0.99
    assert c.frozen_items == ("A", "B")
    assert load_constraints({"ladder": {"ending": 9.99}}).rules.ladder.spacing == 10.0
