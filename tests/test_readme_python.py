"""Every ```python block of the README runs as written, in a folder with the sample files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pricelab import api
from tests.conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_has_python_blocks() -> None:
    assert BLOCKS


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_python_block_runs(k: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.sample(tmp_path)  # the files the README's snippets name
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICELAB_DB", raising=False)
    code = compile(BLOCKS[k], f"README.md python block {k + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{k}"})  # noqa: S102 - the README is ours
    assert os.getcwd() == str(tmp_path)
