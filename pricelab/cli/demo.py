"""``pricelab demo``: the whole pipeline on the bundled sample marketplace."""

from __future__ import annotations

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
            console.print(f"   {len(summary['errors'])} errors, {len(summary['warnings'])} "
                          "warnings (see 'pricelab validate')")
            for w in summary["warnings"][:5]:
                console.print(f"   - {w['message']}", highlight=False)
        else:
            for line in summary.get("lines", []):
                console.print(f"   {line}", highlight=False)
    console.rule()
    console.print(f"Try next:  pricelab validate --db {path}")
    console.print(f"           pricelab runs list --db {path}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)
