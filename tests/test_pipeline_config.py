"""Pipeline config file: every error names the file, the line and the dotted key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pricelab.errors import ConfigError
from pricelab.pipeline import DEFAULTS, load_pipeline_config, validate_config
from tests.conftest import CliResult

HEAD = "# nightly job\ninputs:\n  folder: data\n\n"  # four lines before the section under test


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_pipeline_config(path)
    prefix = f"{path}, "
    assert str(exc.value).startswith(prefix), str(exc.value)
    return str(exc.value)[len(prefix) :]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unknown key at the top level
        (
            HEAD + "estimat:\n  model: ols\n",
            "line 5: estimat: unknown key 'estimat'; did you mean 'estimate'?",
        ),
        (
            HEAD + "notify: {email: a@b.c}\n",
            "line 5: notify: unknown key 'notify'; valid keys: db, inputs, estimate, gate, optimize, "
            "monitor, report, mlflow",
        ),
        # unknown nested keys
        (
            HEAD + "gate:\n  enabled: true\n  tolerance_flag: 3\n",
            "line 7: gate.tolerance_flag: unknown key 'tolerance_flag'; did you mean "
            "'tolerance_flags'?",
        ),
        (
            HEAD + "gate:\n  tolerance_wape: 2\n",
            "line 6: gate.tolerance_wape: replaced by min_improvement_wape: a candidate must now "
            "beat production's WAPE by that percent (a tie keeps production); see "
            "examples/pipeline.yaml",
        ),
        (
            "inputs:\n  files:\n    sales: s.csv\n    item: i.csv\n",
            "line 4: inputs.files.item: unknown key 'item'; did you mean 'items'?",
        ),
        (
            HEAD + "monitor:\n  thresholds:\n    drift:\n      max_shar: 0.2\n",
            "line 8: monitor.thresholds.drift.max_shar: unknown key 'max_shar'; did you mean "
            "'max_share'?",
        ),
        (
            HEAD + "monitor:\n  thresholds:\n    drfit: {}\n",
            "line 7: monitor.thresholds.drfit: unknown monitor check 'drfit'; did you mean 'drift'?",
        ),
        # wrong types
        (
            HEAD + "gate:\n  cutoffs: three\n",
            "line 6: gate.cutoffs: expected a whole number >= 1, got 'three'",
        ),
        (
            HEAD + "gate: 3\n",
            "line 5: gate: expected a mapping with keys enabled, min_improvement_wape, "
            "tolerance_flags, refresh, horizon_weeks, cutoffs, naive_weeks, got 3",
        ),
        (
            "inputs:\n  replace: yes please\n",
            "line 2: inputs.replace: expected true or false, got 'yes please'",
        ),
        (
            HEAD + "gate:\n  tolerance_flags: -1\n",
            "line 6: gate.tolerance_flags: expected a number >= 0, got -1",
        ),
        (
            HEAD + "gate:\n  min_improvement_wape: .nan\n",
            "line 6: gate.min_improvement_wape: expected a number >= 0 and below 100, got nan",
        ),
        (
            HEAD + "optimize:\n  constraints: 5\n",
            "line 6: optimize.constraints: expected a path, got 5",
        ),
        ("db: [a.duckdb]\n", "line 1: db: expected a path, got ['a.duckdb']"),
        (
            "inputs:\n  files: [sales.csv]\n",
            "line 2: inputs.files: expected a mapping with keys sales, items, costs, markets, "
            "inventory, got ['sales.csv']",
        ),
        (
            HEAD + "monitor:\n  thresholds:\n    plan: {max_age_days: 0}\n",
            "line 7: monitor.thresholds.plan.max_age_days: expected a whole number >= 1, got 0",
        ),
        # wrong values, with the closest one suggested
        (
            HEAD + "estimate:\n  model: hierarchial\n",
            "line 6: estimate.model: expected one of ols, poisson, panel, hierarchical, iv, "
            "got 'hierarchial'; did you mean 'hierarchical'?",
        ),
        (
            HEAD + "estimate:\n  trigger: always\n",
            "line 6: estimate.trigger: expected one of new_data, drift, got 'always'",
        ),
        (
            HEAD + "estimate:\n  by: item_id,,market\n",
            "line 6: estimate.by: expected comma-separated column names (e.g. item_id,market), "
            "got 'item_id,,market'",
        ),
        (
            HEAD + "estimate:\n  before: 2024-13-01\n",
            "line 6: estimate.before: cannot read '2024-13-01': month must be in 1..12",
        ),
        (
            HEAD + "estimate:\n  before: last week\n",
            "line 6: estimate.before: expected an ISO date (YYYY-MM-DD), got 'last week'",
        ),
        (
            HEAD + "monitor:\n  as_of: tomorrow\n",
            "line 6: monitor.as_of: expected an ISO date (YYYY-MM-DD), today or data, got 'tomorrow'",
        ),
        # rules across keys
        (
            HEAD + "estimate:\n  model: iv\n",
            "line 6: estimate.model: model iv needs estimate.instrument (a sales column such as "
            "unit_cost, or hausman)",
        ),
        (
            HEAD + "estimate:\n  model: ols\n  instrument: unit_cost\n",
            "line 7: estimate.instrument: only used by model iv (model is ols)",
        ),
        (
            HEAD + "monitor:\n  config: m.yaml\n  thresholds:\n    drift: {max_share: 0.2}\n",
            "line 7: monitor.thresholds: give either config (a file) or thresholds, not both",
        ),
        (
            "- inputs\n",
            "line 1: (top level): expected a mapping with keys db, inputs, estimate, "
            "gate, optimize, monitor, report, mlflow, got ['inputs']",
        ),
    ],
)
def test_error_names_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text) == message


def test_values_paths_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "db: state/p.duckdb\ninputs:\n  folder: data\n  files:\n    costs: c.csv\n"
        "    items: null\nestimate:\n  model: iv\n  instrument: hausman\n"
        "  before: 2024-02-05\ngate:\n  min_improvement_wape: 3\noptimize:\nmonitor:\n"
        "  as_of: 2024-03-04\n  thresholds:\n    drift: {max_share: 0.3}\n"
    )
    cfg = load_pipeline_config(path)
    assert cfg["db"] == tmp_path / "state" / "p.duckdb"
    assert cfg["inputs"]["folder"] == tmp_path / "data"
    assert cfg["inputs"]["files"] == {"costs": tmp_path / "c.csv"}  # null: not configured
    assert cfg["estimate"] == {
        **DEFAULTS["estimate"],
        "model": "iv",
        "instrument": "hausman",
        "before": "2024-02-05",
    }  # a YAML date back to ISO text
    gate = cfg["gate"]
    assert gate["min_improvement_wape"] == 3.0 and isinstance(gate["min_improvement_wape"], float)
    assert cfg["optimize"] == DEFAULTS["optimize"]  # an empty section keeps its defaults
    assert cfg["monitor"]["as_of"] == "2024-03-04"
    assert cfg["monitor"]["thresholds"] == {"drift": {"max_share": 0.3}}


def test_mapping_without_a_file_names_the_source_but_no_line() -> None:
    with pytest.raises(ConfigError) as exc:
        validate_config({"gate": {"cutoffs": True}})
    assert str(exc.value) == "config: gate.cutoffs: expected a whole number >= 1, got True"
    with pytest.raises(ConfigError) as exc:
        load_pipeline_config({"monitor": {"thresholds": {"fit": {"flag": ["failed"]}}}})
    assert str(exc.value) == (
        "config: monitor.thresholds.fit.flag: unknown key 'flag'; did you mean 'flags'?"
    )


def test_cli_check_exits_2_with_the_message(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "estimate:\n  model: ols\n  slope: items\n")
    res = cli("pipeline", "check", "--config", path)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {path}, line 7: estimate.slope: expected one of item, common, "
        "got 'items'; did you mean 'item'?\n"
    )
