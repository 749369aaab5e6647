"""``pricelab demo``: the whole pipeline on the bundled sample marketplace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pricelab import api
from pricelab.cli._common import DbOpt, DebugOpt, JsonOpt, console, guarded, print_json


@guarded
def demo(db: DbOpt = None, json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Build a database from the bundled sample data and run the whole pipeline on it."""
    result = api.demo(db)
    if json:
        print_json(result)
        return
    path = result["db"]
    console.rule("[bold]pricelab demo")
    for i, step in enumerate(result["steps"], 1):
        summary = step["summary"]
        console.print(f"[bold cyan]{i}. {step['step']}[/]")
        if step["step"] == "ingest":
            loaded = ", ".join(f"{n} {k}" for k, n in summary["loaded"].items())
            console.print(f"   loaded {loaded} rows into {path}")
        elif step["step"] == "validate":
            ne, nw = len(summary["errors"]), len(summary["warnings"])
            console.print(
                f"   {ne} error{'s' * (ne != 1)}, {nw} warning{'s' * (nw != 1)} "
                "(see 'pricelab validate')"
            )
            for w in summary["warnings"][:5]:
                console.print(f"   - {w['message']}", highlight=False)
        else:
            for line in summary.get("lines", []):
                console.print(f"   {line}", highlight=False)
    console.rule()
    console.print(f"Try next:  pricelab validate --db {path}")
    console.print(f"           pricelab runs list --db {path}")


@guarded
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sample files to.")],
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="Make the CSV files afresh with the seeded generator instead of copying.",
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Generator seed (with --generate).")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the sample marketplace (CSV files, constraints.yaml, scenario.yaml) to a folder;
    with --db also ingest it."""
    files, ingested = api.sample(out, generate=generate, seed=seed, db=db)
    loaded = ingested.to_dict() if ingested is not None else None
    if json:
        print_json({"files": {k: str(v) for k, v in files.items()}, "ingest": loaded})
        return
    for name, path in files.items():
        console.print(f"  {name:<18} {path}", highlight=False)
    if loaded is not None:
        console.print(f"ingested into {db} (run {loaded['run_id']})", highlight=False)
    console.print(
        f"Try:  pricelab optimize --db DB --constraints {Path(out) / 'constraints.yaml'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``sample`` to ``app``."""
    app.command("demo")(demo)
    app.command("sample")(sample)
