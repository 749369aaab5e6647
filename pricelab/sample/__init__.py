"""The bundled synthetic sample: its generator and where its files live."""

from __future__ import annotations

from pathlib import Path

from pricelab.errors import InputFileError
from pricelab.sample.generator import FILES, generate_sample

__all__ = ["FILES", "generate_sample", "sample_dir"]


def sample_dir() -> Path:
    """Return the folder holding the bundled sample CSVs.

    Looks for ``pricelab/_sample_data`` (installed wheel) and then ``data/sample``
    of a source checkout.

    Returns
    -------
    Path
        The folder with ``sales.csv``, ``items.csv`` and the other sample tables.

    Raises
    ------
    InputFileError
        Neither location holds ``sales.csv``.
    """
    here = Path(__file__).resolve().parent
    candidates = (here.parent / "_sample_data", here.parents[1] / "data" / "sample")
    for folder in candidates:
        if (folder / "sales.csv").is_file():
            return folder
    raise InputFileError(
        "sample data not found in " + " or ".join(str(c) for c in candidates),
        hint="regenerate it with: python examples/make_sample.py",
    )
