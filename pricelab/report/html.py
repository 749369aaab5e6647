"""The HTML page: inline CSS, escaped tables, base64 PNG images; no network references."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

import polars as pl

CSS = """
:root { --ink: #1d2430; --muted: #5d6673; --line: #dfe3e8; --accent: #1f4e79;
        --ok: #2e7d32; --warn: #b26a00; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
       sans-serif; color: var(--ink); background: #f5f6f8; }
main { max-width: 1020px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
header h1 { margin: 0 0 4px; font-size: 24px; color: var(--accent); }
header p { margin: 0; color: var(--muted); }
nav { margin: 14px 0 6px; padding: 8px 0; border-top: 1px solid var(--line);
      border-bottom: 1px solid var(--line); }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-weight: 600; }
section { margin-top: 28px; }
h2 { font-size: 19px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid
     var(--accent); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.note, figcaption { color: var(--muted); font-size: 12.5px; }
p.note.warn { color: var(--warn); font-weight: 600; }
p.absent { padding: 10px 14px; background: #f7f7f9; border-left: 4px solid #c3c8cf;
           color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 12.5px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left;
         white-space: nowrap; }
th { background: #f0f3f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 700; border-top: 2px solid #b9c0c9; }
.tw { max-width: 100%; overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.card { flex: 1 1 150px; padding: 10px 12px; border: 1px solid var(--line); border-radius: 6px; }
.card .v { font-size: 19px; font-weight: 700; }
.card .k { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 11.5px;
         font-weight: 700; color: #fff; }
.badge.ok { background: var(--ok); } .badge.warning { background: var(--warn); }
.badge.error { background: var(--bad); }
code { background: #f0f3f7; padding: 0 4px; border-radius: 3px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 2) -> str:
    """A cell's text: thousands separators, ``digits`` decimals for floats, blank for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(
    df: pl.DataFrame,
    *,
    digits: dict[str, int] | None = None,
    default_digits: int = 2,
    total: Sequence[Any] | None = None,
    max_rows: int = 50,
    caption: str | None = None,
) -> str:
    """An HTML table of ``df`` (first ``max_rows`` rows), numbers right-aligned.

    ``total`` is an optional last row (same length as the columns) shown in bold.
    """
    digits = digits or {}
    numeric = [dtype.is_numeric() for dtype in df.schema.values()]
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if n else f"<th>{esc(c)}</th>"
        for c, n in zip(df.columns, numeric, strict=True)
    )
    body = []
    rows = list(df.head(max_rows).iter_rows())
    if total is not None:
        rows.append(tuple(total))
    for k, row in enumerate(rows):
        cells = []
        for col, n, v in zip(df.columns, numeric, row, strict=True):
            text = esc(fmt(v, digits.get(col, default_digits)))
            cells.append(f'<td class="num">{text}</td>' if n else f"<td>{text}</td>")
        cls = ' class="total"' if total is not None and k == len(rows) - 1 else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = ""
    if df.height > max_rows:
        note = f'<p class="note">{max_rows} of {df.height:,} rows shown.</p>'
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="tw"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def image(png: bytes, alt: str, caption: str | None = None) -> str:
    """A figure with the PNG inlined as a ``data:`` URI."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{cap}</figure>'


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Headline numbers as small cards: (label, value) pairs."""
    inner = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
        for k, v in items
    )
    return f'<div class="cards">{inner}</div>'


def absent(text: str) -> str:
    """The paragraph a section shows when its data is absent."""
    return f'<p class="absent">{text}</p>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], footer: str) -> str:
    """The whole document: ``sections`` are (id, heading, inner HTML)."""
    nav = "".join(f'<a href="#{esc(sid)}">{esc(head)}</a>' for sid, head, _ in sections)
    body = "".join(
        f'<section id="{esc(sid)}"><h2>{esc(head)}</h2>{inner}</section>'
        for sid, head, inner in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>"
        f"{body}<footer>{footer}</footer></main></body></html>\n"
    )
