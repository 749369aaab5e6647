"""The pipeline's input files: a config's ``inputs`` section resolved to one file per table.

Local paths or storage URLs (``az://``, ``s3://``...; see :mod:`pricelab.urls`).
"""

from __future__ import annotations

from typing import Any

from pricelab.errors import InputFileError

KINDS = ("sales", "items", "costs", "markets", "inventory")
EXTENSIONS = (".csv", ".parquet", ".json")


def input_files(cfg: dict[str, Any]) -> dict[str, Any]:
    """The input file of each table kind: explicit ``files`` over the ``folder``'s.

    Local paths or storage URLs (``az://``, ``s3://``...; see :mod:`pricelab.urls`).

    Raises
    ------
    InputFileError
        The folder or a listed file does not exist, or no input file is configured.
    """
    from pricelab import urls

    inp = cfg["inputs"]
    out: dict[str, Any] = {}
    folder = inp["folder"]
    if folder is not None:
        if not urls.is_dir(folder):
            raise InputFileError(f"inputs.folder {urls.display(folder)}: folder not found")
        for kind in KINDS:
            found = [
                f
                for f in (urls.join(folder, f"{kind}{ext}") for ext in EXTENSIONS)
                if urls.is_file(f)
            ]
            if len(found) > 1:
                raise InputFileError(
                    f"inputs.folder {urls.display(folder)}: both "
                    f"{file_name(found[0])} and {file_name(found[1])}; keep one"
                )
            if found:
                out[kind] = found[0]
    for kind, path in inp["files"].items():
        if not urls.is_file(path):
            raise InputFileError(f"inputs.files.{kind} {urls.display(path)}: file not found")
        out[kind] = path
    if not out:
        where = f"folder {urls.display(folder)}" if folder is not None else "the config"
        raise InputFileError(
            f"no input files in {where}: expected sales.csv (or .parquet) and "
            "optionally items, costs, markets, inventory"
        )
    return out


def file_name(path: Any) -> str:
    """The last part of a local path or URL."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]
