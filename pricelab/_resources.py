"""Files shipped inside the package (the bundled sample marketplace)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pricelab.errors import InputFileError


def sample_dir() -> Path:
    """The folder holding the bundled sample CSV files.

    Installed wheels carry it as ``pricelab/_sample_data``; a source checkout uses
    ``data/sample`` at the repository root.
    """
    packaged = Path(str(resources.files("pricelab"))) / "_sample_data"
    if (packaged / "sales.csv").exists():
        return packaged
    repo = Path(__file__).resolve().parents[1] / "data" / "sample"
    if (repo / "sales.csv").exists():
        return repo
    raise InputFileError(
        "the bundled sample data is missing from this installation (reinstall pricelab)"
    )
