"""Stored experiment designs: the assignment and the test window, by experiment name."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from pricelab.errors import NotFoundError, UsageError
from pricelab.store.db import Store


def experiment_exists(store: Store, name: str) -> bool:
    """True when a design with this name is stored."""
    if not store.has_table("experiments"):
        return False
    return bool(store.execute("SELECT 1 FROM experiments WHERE name = ?", [name]))


def save_design(store: Store, design: Any, run_id: str) -> None:
    """Store the design's header row and its assignment under ``run_id``."""
    if experiment_exists(store, design.name):
        raise UsageError(f"experiment '{design.name}' already exists; choose another --name")
    header = pl.DataFrame(
        [
            {
                "name": design.name,
                "start": design.start,
                "end": design.end,
                "weeks": design.weeks,
                "cells": json.dumps(design.cells),
                "unit": design.unit,
                "stratify": json.dumps(design.stratify),
                "seed": design.seed,
            }
        ]
    )
    store.write_result("experiments", header, run_id)
    store.write_result(
        "experiment_assignments",
        design.assignment.with_columns(pl.lit(design.name).alias("experiment")),
        run_id,
    )


def load_design(store: Store, name: str) -> tuple[dict[str, Any], pl.DataFrame]:
    """The stored header (dict) and assignment of experiment ``name``."""
    if not experiment_exists(store, name):
        raise NotFoundError(
            f"experiment '{name}' not found; create it with 'pricelab experiment design --name ...'"
        )
    header = store.query("SELECT * FROM experiments WHERE name = ?", [name]).row(0, named=True)
    assignment = store.query(
        "SELECT * EXCLUDE (run_id, experiment) FROM experiment_assignments "
        "WHERE run_id = ? AND experiment = ?",
        [header["run_id"], name],
    )
    header["cells"] = json.loads(header["cells"])
    header["stratify"] = json.loads(header["stratify"])
    return header, assignment
