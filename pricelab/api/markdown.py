"""``markdown``: a season clearance plan (week-by-week discounts under finite stock)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from pricelab.store import Store

PathLike = str | os.PathLike[str]


class MarkdownRun:
    """A markdown plan and the run it is stored as (None when not stored)."""

    def __init__(self, plan: Any, run_id: str | None, estimates: str | None) -> None:
        self.plan = plan
        self.run_id = run_id
        self.estimates = estimates

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the plan's totals plus lineage)."""
        return {"run_id": self.run_id, "estimates_run": self.estimates, **self.plan.to_dict()}


def _store(
    store: Store, plan: Any, params: dict[str, Any], parents: list[str], est: str | None
) -> MarkdownRun:
    from pricelab.store.runs import record_run

    run = record_run(store, "markdown", params, parents=parents)
    with store.transaction():
        store.write_result("markdown_plans", plan.table, run.run_id)
        store.write_result("markdown_items", plan.items, run.run_id)
        out = MarkdownRun(plan, run.run_id, est)
        run.finish(out.to_dict())
    return out


def markdown_plan(
    db: PathLike | None = None,
    *,
    demand: PathLike | None = None,
    stock: PathLike | None = None,
    constraints: PathLike | dict[str, Any] | None = None,
    season_end: dt.date | str | None = None,
    estimates: str | None = None,
    baseline_weeks: int = 8,
) -> MarkdownRun:
    """Plan the rest of the season's discounts per item × market × week.

    File mode (``demand`` and ``stock`` given): the plan is stored only when a database is
    named explicitly (``db`` or ``$PRICELAB_DB``). Database mode: stock from ``inventory``,
    full prices, elasticities (production estimates) and weekly demand from the database;
    the plan is stored as a ``markdown`` run whose parent is the estimate run.

    Raises ``InfeasibleError`` (exit 1) when a sell-through target cannot be met, naming
    the category; ``DataError``/``ConfigError``/``UsageError`` (exit 2) on bad input.
    """
    from pricelab.api.optimize import _constraints_content, _db_given, _file_name
    from pricelab.errors import UsageError
    from pricelab.markdown import load_markdown_config, plan_markdown, read_markdown_files

    if isinstance(season_end, str):
        try:
            season_end = dt.date.fromisoformat(season_end)
        except ValueError:
            raise UsageError(f"--season-end: {season_end!r} is not a date YYYY-MM-DD") from None
    cfg = load_markdown_config(constraints)
    params: dict[str, Any] = {
        "constraints": _file_name(constraints)
        if constraints is not None and not isinstance(constraints, dict)
        else None,
        "constraints_content": _constraints_content(constraints),
        "demand": _file_name(demand) if demand is not None else None,
        "stock": _file_name(stock) if stock is not None else None,
        "season_end": str(season_end) if season_end is not None else None,
        "estimates": estimates,
        "baseline_weeks": baseline_weeks,
    }
    if (demand is None) != (stock is None):
        raise UsageError("file mode needs both --demand and --stock")
    if demand is not None and stock is not None:
        plan = plan_markdown(read_markdown_files(demand, stock, cfg))
        if not _db_given(db):
            return MarkdownRun(plan, None, None)
        with Store.open(db) as store:
            return _store(store, plan, params, [], None)
    from pricelab.markdown.from_store import markdown_from_store

    with Store.open(db, must_exist=True) as store:
        prob, est_run, info = markdown_from_store(
            store, cfg, season_end=season_end, estimates=estimates, baseline_weeks=baseline_weeks
        )
        plan = plan_markdown(prob)
        params["estimates"] = est_run
        params["demand_model"] = info
        return _store(store, plan, params, [est_run], est_run)


def markdown_replay_ref(scenario: PathLike | dict[str, Any]) -> str | None:
    """The ``markdown_run`` a scenario file replays, or None for an ordinary scenario file.

    A replay file holds ``markdown_run: latest`` (or a markdown run id) and optionally
    ``description``; anything else next to ``markdown_run`` is a ConfigError naming the key.
    """
    from pricelab.configfile import ConfigContext, check_keys, parse_config, read_config
    from pricelab.urls import display

    if isinstance(scenario, dict):
        data, ctx = scenario, ConfigContext("<dict>", {})
    else:
        data, ctx = parse_config(read_config(scenario, "scenario file"), display(scenario))
    if not isinstance(data, dict) or "markdown_run" not in data:
        return None
    # imported only for a replay file: pricelab.markdown is not needed by a what-if
    from pricelab.markdown.replay import KEYS

    check_keys(ctx, (), data, KEYS)
    ref = data["markdown_run"]
    if not isinstance(ref, str) or not ref.strip():
        raise ctx.fail(("markdown_run",), f"expected 'latest' or a run id, got {ref!r}")
    return ref.strip()


def markdown_replay(db: PathLike | None, scenario: PathLike | dict[str, Any]) -> Any:
    """Replay the markdown run a scenario file names against the sales history.

    Returns a :class:`pricelab.markdown.replay.MarkdownReplay` (per item × market × week
    planned vs. realised, per market and per stock pool), stored as a ``markdown_replay``
    run whose parent is the markdown run. Raises ``NotFoundError``/``UsageError`` (exit 2)
    when the run is missing, not a markdown run, or was planned from files.
    """
    from pricelab.errors import UsageError
    from pricelab.markdown.replay import replay_markdown

    ref = markdown_replay_ref(scenario)
    if ref is None:
        raise UsageError("the scenario file has no markdown_run to replay")
    with Store.open(db, must_exist=True) as store:
        return replay_markdown(store, ref)


def simulate_or_replay(db: PathLike | None, scenario: PathLike, **options: Any) -> Any:
    """What ``pricelab simulate`` runs: :func:`markdown_replay` when the scenario file names a
    ``markdown_run``, else :func:`pricelab.api.simulate` with ``options``."""
    from pricelab.api.whatif import simulate

    if markdown_replay_ref(scenario) is not None:
        return markdown_replay(db, scenario)
    return simulate(db, scenario, **options)
