"""The README's five-minute tour works as written: every command, in order, as a real process."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.conftest import REPO, run_subprocess


def tour_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Five-minute tour", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    block = block.replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line:
            args = shlex.split(line)
            assert args[0] == "pricelab", line
            commands.append(args[1:])
    return commands


def test_tour_runs_end_to_end(tmp_path: Path) -> None:
    commands = tour_commands()
    assert len(commands) >= 10
    for args in commands:
        proc = run_subprocess(*args, cwd=tmp_path)
        assert proc.returncode == 0, f"pricelab {' '.join(args)}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
    assert (tmp_path / "plan.csv").exists() and (tmp_path / "report.html").exists()
