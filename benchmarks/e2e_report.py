"""The end-to-end table and scaling plot of results.md, drawn from ``bench_e2e.py``'s JSON lines.

    python benchmarks/e2e_report.py e2e.jsonl [more.jsonl ...] [--plot benchmarks/e2e_scaling.png]

Prints the markdown table (one row per command and size, the DuckDB ``regr_slope``
reference of each size on its own row) and, with ``--plot``, draws time and peak memory
against the number of groups: one line per command plus the reference, log axes, the
goals' memory lines, titled with the date, commit and load average of the runs. The JSON
lines are the record: the table and the plot can be redrawn from them at any time.
``run_all.py`` uses the same two functions.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ORDER = ("ols", "poisson", "hierarchical", "version", "ingest")
REF = "DuckDB `regr_slope` (reference)"


def _g(v: float) -> str:
    """Three significant digits; thousands with separators."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    """``min–median–max`` of per-round values."""
    return "–".join(fmt.format(v) for v in (min(xs), statistics.median(xs), max(xs)))


def _range(xs: list[float]) -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:.1f}" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}-{hi:.1f}"


def _label(r: dict[str, Any], versions: int) -> str:
    name = r["name"] if versions > 1 else r["name"].rsplit(" (", 1)[0]
    return f"`{name}`" if r.get("command") != "ingest" else name


def load(paths: list[Path]) -> list[dict[str, Any]]:
    """Every ``e2e`` record of the JSON-lines files (later lines replace earlier ones of the
    same command, version and size)."""
    recs: dict[tuple[str, int], dict[str, Any]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                if r.get("bench") == "e2e":
                    recs[(r["name"], r["size"])] = r
    return list(recs.values())


def table(recs: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: wall and CPU seconds, per-round ratios to the reference, peak, load."""
    rows = [r for r in recs if r["bench"] == "e2e"]
    if not rows:
        return ["(not measured)"]
    versions = len({r.get("version") for r in rows})
    out = [
        "| command | size | rows | rounds | wall s, median (min–max) | wall / reference, "
        "per round (min–median–max) | CPU s, median | CPU / reference, per round "
        "(min–median–max) | ÷ ols command, per round (wall) | peak MiB (max) | load average |",
        "|---|---:|---:|---:|---|---|---:|---|---|---:|---|",
    ]
    done: set[int] = set()
    key = ORDER.index
    for r in sorted(rows, key=lambda r: (r["size"], key(r.get("command", "ols")), r["name"])):
        size = f"{r['size']:,} {r['unit']}"
        if r["size"] not in done and "ref_cpu_runs" in r:  # the size's reference, once
            done.add(r["size"])
            ref, cpu = r["ref_runs"], r["ref_cpu_runs"]
            out.append(
                f"| {REF} | {size} | {r['rows']:,} | {len(ref)} | {_g(statistics.median(ref))} "
                f"({_g(min(ref))}–{_g(max(ref))}) | 1 | {_g(statistics.median(cpu))} | 1 | | "
                f"{_g(max(r.get('ref_peaks') or [0])) if r.get('ref_peaks') else ''} | "
                f"{_range(r['ref_load_runs']) if r.get('ref_load_runs') else ''} |"
            )
        runs, cpus = r["runs"], r.get("cpu_runs")
        out.append(
            f"| {_label(r, versions)} | {size} | {r['rows']:,} | {len(runs)} | "
            f"{_g(statistics.median(runs))} ({_g(min(runs))}–{_g(max(runs))}) | "
            f"{_spread(r['ratios'])} | {_g(statistics.median(cpus)) if cpus else ''} | "
            f"{_spread(r['cpu_ratios']) if r.get('cpu_ratios') else ''} | "
            f"{_spread(r['ols_ratios']) if r.get('ols_ratios') else ''} | "
            f"{_g(r['peak_mb'])} | "
            f"{_range(r['load_runs']) if r.get('load_runs') else r.get('load', '')} |"
        )
    return out


def title(recs: list[dict[str, Any]], commit: str = "") -> str:
    """Date, commit(s) (``commit`` instead, when given) and load range of the measurements."""
    days = sorted({r["when"][:10] for r in recs if r.get("when")})
    commits = [commit] if commit else sorted({r["commit"] for r in recs if r.get("commit")})
    loads = [x for r in recs for x in (r.get("load_runs") or []) + (r.get("ref_load_runs") or [])]
    parts = [", ".join(days) or "undated", "commit " + ", ".join(commits) if commits else ""]
    if loads:
        parts.append(f"load average {min(loads):.1f}-{max(loads):.1f}")
    return "; ".join(p for p in parts if p)


def plot(recs: list[dict[str, Any]], path: Path, note: str = "", commit: str = "") -> bool:
    """Wall seconds (median, min–max bars) and peak memory against groups, log axes;
    ``note`` is added to the title (how the runs were scheduled, say)."""
    rows = [r for r in recs if r["bench"] == "e2e" and r.get("command") in ORDER[:3]]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.6))
    lines = sorted({(r["command"], r.get("version", "after")) for r in rows}, key=str)
    lines.sort(key=lambda cv: ORDER.index(cv[0]))
    versions = len({v for _, v in lines})
    for cmd, version in lines:
        pts = sorted(
            (r for r in rows if r["command"] == cmd and r.get("version", "after") == version),
            key=lambda r: r["size"],
        )
        g = [r["size"] for r in pts]
        med = [statistics.median(r["runs"]) for r in pts]
        err = [
            [m - min(r["runs"]) for m, r in zip(med, pts, strict=True)],
            [max(r["runs"]) - m for m, r in zip(med, pts, strict=True)],
        ]
        label = f"estimate --model {cmd}" + (f" ({version})" if versions > 1 else "")
        (line,) = ax_t.plot(g, med, "o-", label=label)
        ax_t.errorbar(g, med, yerr=err, fmt="none", ecolor=line.get_color(), capsize=3)
        ax_m.plot(g, [r["peak_mb"] for r in pts], "o-", color=line.get_color(), label=label)
    refs: dict[int, dict[str, Any]] = {}
    for r in rows:
        refs.setdefault(r["size"], r)
    ref = [refs[s] for s in sorted(refs)]
    g = [r["size"] for r in ref]
    ax_t.plot(
        g,
        [statistics.median(r["ref_runs"]) for r in ref],
        "ks--",
        label="DuckDB regr_slope (own process)",
    )
    if all(r.get("ref_peaks") for r in ref):
        ax_m.plot(g, [max(r["ref_peaks"]) for r in ref], "ks--", label="DuckDB regr_slope")
    for mib, text in ((1e9 / 2**20, "1 GB"), (3e9 / 2**20, "3 GB")):
        ax_m.axhline(mib, color="grey", lw=0.8, ls=":")
        ax_m.annotate(
            f"goal {text}",
            (g[0], mib),
            fontsize=7,
            color="grey",
            textcoords="offset points",
            xytext=(2, 2),
        )
    for ax, label in (
        (ax_t, "wall seconds, whole process (median; bars min–max)"),
        (ax_m, "peak resident MiB (max of the runs)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("item × market groups (52 weeks each)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left" if ax is ax_t else "lower right")
    head = "pricelab estimate --output, end to end, fresh processes"
    fig.suptitle(f"{head} ({title(rows, commit)})" + (f"\n{note}" if note else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jsonl", nargs="+", type=Path, help="bench_e2e.py output(s)")
    ap.add_argument("--plot", type=Path, help="write the scaling plot here (PNG)")
    ap.add_argument("--note", default="", help="a second title line for the plot")
    ap.add_argument("--commit", default="", help="the commit to name (default: the lines')")
    a = ap.parse_args(argv)
    recs = load(a.jsonl)
    print("\n".join(table(recs)))
    if a.plot and plot(recs, a.plot, a.note, a.commit):
        print(f"\n![end-to-end scaling]({a.plot.name}) ({title(recs, a.commit)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
