"""Season clearance: week-by-week markdown paths under finite (shared) stock.

``read_markdown_files`` (file mode) or ``markdown_from_store`` (database mode) build a
:class:`MarkdownProblem`; :func:`plan_markdown` solves it (Lagrangian + DP + MILP) into a
:class:`MarkdownPlan`.
"""

from __future__ import annotations

from pricelab.markdown.config import MarkdownConfig, load_markdown_config
from pricelab.markdown.files import read_markdown_files
from pricelab.markdown.plan import MarkdownPlan
from pricelab.markdown.problem import MarkdownProblem, constant_elasticity_demand
from pricelab.markdown.solver import MarkdownSolution, solve_markdown


def plan_markdown(problem: MarkdownProblem) -> MarkdownPlan:
    """Solve ``problem`` and wrap the result as a plan."""
    return MarkdownPlan(problem, solve_markdown(problem))


__all__ = [
    "MarkdownConfig",
    "MarkdownPlan",
    "MarkdownProblem",
    "MarkdownSolution",
    "constant_elasticity_demand",
    "load_markdown_config",
    "plan_markdown",
    "read_markdown_files",
    "solve_markdown",
]
