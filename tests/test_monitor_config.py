"""Monitor thresholds file: every error names the file, the line and the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricelab.errors import ConfigError
from pricelab.monitor import DEFAULTS, load_config, merge_config


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    prefix = f"{path}, "
    assert str(exc.value).startswith(prefix), str(exc.value)
    return str(exc.value)[len(prefix) :]


HEAD = "# thresholds for the nightly job\nother: {x: 1}\n\nmonitor:\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unknown check at the top of the monitor section
        (
            HEAD + "  drift: {max_share: 0.2}\n  fresness:\n    max_age_days: 3\n",
            "line 6: monitor.fresness: unknown monitor check 'fresness'; did you mean 'freshness'?",
        ),
        (
            HEAD + "  latency: {}\n",
            "line 5: monitor.latency: unknown monitor check 'latency'; valid keys: freshness, volume, "
            "drift, fit, plan",
        ),
        # unknown key inside a check
        (
            HEAD + "  volume:\n    trailing_weeks: 30\n    max_robust: 3\n",
            "line 7: monitor.volume.max_robust: unknown key 'max_robust'; did you mean 'max_robust_z'?",
        ),
        # wrong types and values
        (
            HEAD + "  fit:\n    enabled: maybe\n",
            "line 6: monitor.fit.enabled: expected true or false, got 'maybe'",
        ),
        (
            HEAD + "  volume:\n    max_robust_z: four\n",
            "line 6: monitor.volume.max_robust_z: expected a number, got 'four'",
        ),
        (
            HEAD + "  plan:\n    max_age_days: 2.5\n",
            "line 6: monitor.plan.max_age_days: expected a whole number >= 1, got 2.5",
        ),
        (
            HEAD + "  freshness:\n    max_age_days: .inf\n",
            "line 6: monitor.freshness.max_age_days: expected a finite number, got inf",
        ),
        (
            HEAD + "  volume:\n    max_robust_z: 0\n",
            "line 6: monitor.volume.max_robust_z: must be > 0, got 0",
        ),
        (
            HEAD + "  volume:\n    seasonal: 1\n",
            "line 6: monitor.volume.seasonal: expected auto, true or false, got 1",
        ),
        (
            HEAD + "  fit:\n    flags:\n      - failed\n      - 3\n",
            "line 8: monitor.fit.flags.1: expected a flag name, got 3",
        ),
        (
            HEAD + "  fit:\n    flags: failed\n",
            "line 6: monitor.fit.flags: expected a list of flag names, got 'failed'",
        ),
        (
            HEAD + "  plan: [1]\n",
            "line 5: monitor.plan: expected a mapping with keys enabled, max_age_days, got [1]",
        ),
        (
            HEAD + "  volume:\n    trailing_weeks: 6\n",
            "line 6: monitor.volume.trailing_weeks: min_weeks (8) exceeds trailing_weeks (6): the "
            "volume check would never run",
        ),
        (
            HEAD + "  freshness:\n    max_age_days: 2024-13-01\n",
            "line 6: monitor.freshness.max_age_days: cannot read '2024-13-01': month must be in 1..12",
        ),
        (
            "- freshness\n",
            "line 1: (top level): expected a mapping with a 'monitor' section, got ['freshness']",
        ),
    ],
)
def test_error_names_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text) == message


def test_file_that_is_the_section_itself(tmp_path: Path) -> None:
    # no monitor key: the keys are the checks, at the top level of the file
    assert _error(tmp_path, "drift: {max_share: 0.3}\nplan:\n  max_age: 3\n") == (
        "line 3: plan.max_age: unknown key 'max_age'; did you mean 'max_age_days'?"
    )
    # a misspelt section name is not read as a check
    assert _error(tmp_path, "\nmonitr:\n  drift: {max_share: 0.3}\n") == (
        "line 2: monitr: unknown key 'monitr'; did you mean 'monitor'?"
    )
    path = tmp_path / "s.yaml"
    path.write_text("drift: {max_share: 0.3}\nvolume: {seasonal: off}\n")
    cfg = load_config(path)
    assert cfg["drift"]["max_share"] == 0.3 and cfg["volume"]["seasonal"] is False


def test_values_are_normalised_and_defaults_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "monitor:\n  freshness: {max_age_days: 30.0}\n  volume:\n"
        "    max_robust_z: 3\n    min_weeks: 26\n  drift:\n  fit: {flags: [failed]}\n"
    )
    cfg = load_config(path)
    fresh = cfg["freshness"]["max_age_days"]
    assert fresh == 30 and isinstance(fresh, int)
    z = cfg["volume"]["max_robust_z"]
    assert z == 3.0 and isinstance(z, float)
    assert cfg["volume"]["min_weeks"] == 26 == cfg["volume"]["trailing_weeks"]
    assert cfg["drift"] == DEFAULTS["drift"]  # an empty check keeps its defaults
    assert cfg["fit"]["flags"] == ["failed"] and cfg["fit"]["max_share"] == 0.2
    assert cfg["plan"] == DEFAULTS["plan"]
    path.write_text("# nothing yet\n")
    assert load_config(path) == DEFAULTS


def test_mapping_without_a_file_names_the_source_but_no_line() -> None:
    with pytest.raises(ConfigError) as exc:
        merge_config({"drift": {"max_shar": 0.2}}, "settings")
    assert str(exc.value) == (
        "settings: monitor.drift.max_shar: unknown key 'max_shar'; did you mean 'max_share'?"
    )
    with pytest.raises(ConfigError) as exc:
        merge_config({"fit": {"max_share": -0.1}})
    assert str(exc.value) == (
        "config: monitor.fit.max_share: expected a share between 0 and 1, got -0.1"
    )
