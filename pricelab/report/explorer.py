"""The report's plan explorer: a sortable, filterable plan table with "why this price" per row.

Everything is inline (the rows as JSON, a small script, SVG drawn by the script): the file
works offline, without a server or a CDN. Markets are told apart by marker shape as well as
colour; the curve's y-axis follows the central curve, so a wide interval does not flatten it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import polars as pl

from pricelab.elasticity.results import ABSURD_ELASTICITY
from pricelab.report.html import esc

#: rows embedded with their curves (the table beyond this says how many were left out)
MAX_ROWS = 2000
CURVE_POINTS = 41
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")

_PLAIN = {
    "bounds": "a price bound (max_increase_pct / max_decrease_pct)",
    "max_increase_pct": "the maximum increase (max_increase_pct)",
    "max_decrease_pct": "the maximum decrease (max_decrease_pct)",
    "min_margin_pct": "the margin floor (min_margin_pct)",
    "parity": "cross-market parity (parity.max_gap_pct)",
    "ladder": "the price ladder (allowed price points)",
    "inventory": "the stock limit (inventory)",
    "min_volume_pct": "the volume floor (min_volume_pct)",
    "max_avg_change_pct": "the average-change budget (max_avg_change_pct)",
    "frozen": "a frozen price (frozen)",
    "max_extrapolation_pct": "the observed price range (max_extrapolation_pct)",
}


def _plain(name: str) -> str:
    """Plain words for one ``binding`` label (``inventory of ITEM/MARKET``: a sibling's stock
    under cross-price demand)."""
    if name.startswith("inventory of "):
        return f"the stock of {name[len('inventory of ') :]}, which this price protects (inventory)"
    return _PLAIN.get(name, name)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _curve(r: dict[str, Any]) -> dict[str, list[float]] | None:
    """Units and profit over the horizon on a price grid around current and recommended."""
    p0, p1 = _num(r.get("current_price")), _num(r.get("recommended_price"))
    q0, e = _num(r.get("baseline_quantity")), _num(r.get("elasticity"))
    c = _num(r.get("unit_cost"))
    if p0 is None or p1 is None or q0 is None or e is None or p0 <= 0 or p1 <= 0:
        return None
    if abs(e) > ABSURD_ELASTICITY:  # absurd: listed by the elasticities section, not drawn
        return None
    from pricelab.demand.curves import ConstantElasticity

    p = np.linspace(0.6 * min(p0, p1), 1.4 * max(p0, p1), CURVE_POINTS)
    out: dict[str, list[float]] = {"p": [round(float(v), 4) for v in p]}
    with np.errstate(all="ignore"):
        q = ConstantElasticity(p0, q0, e).quantity(p)
    if not np.isfinite(q).all():
        return None
    out["q"] = [round(float(v), 4) for v in q]
    if c is not None:
        out["profit"] = [round((float(pi) - c) * qi, 2) for pi, qi in zip(p, out["q"], strict=True)]
    lo, hi = _num(r.get("ci_low")), _num(r.get("ci_high"))
    if lo is not None and hi is not None and max(abs(lo), abs(hi)) <= ABSURD_ELASTICITY:
        qa = ConstantElasticity(p0, q0, lo).quantity(p)
        qb = ConstantElasticity(p0, q0, hi).quantity(p)
        out["q_lo"] = [round(float(v), 4) for v in np.minimum(qa, qb)]
        out["q_hi"] = [round(float(v), 4) for v in np.maximum(qa, qb)]
    return out


def _why(r: dict[str, Any]) -> str:
    """Plain words for what holds the price (the stored ``binding``, ``status``, ``reason``)."""
    status = str(r.get("status") or "optimized")
    if status != "optimized":
        return f"Not optimized ({status}): {r.get('reason') or 'no reason recorded'}; kept at the current price."
    names = [b.strip() for b in str(r.get("binding") or "").split(",") if b.strip()]
    if not names:
        why = "No constraint holds it: this is the unconstrained best price for the objective."
    else:
        why = "Held by " + "; ".join(_plain(n) for n in names) + "."
    if r.get("too_wide"):
        why += (
            f" Interval too wide to act on: within the elasticity's 90% interval this price "
            f"changes the row's result by {r['uplift_low_pct']:+.0f}% to "
            f"{r['uplift_high_pct']:+.0f}% against today's; test it before acting on it."
        )
    return why


def _rows(plan: pl.DataFrame, currency: dict[str, str]) -> list[dict[str, Any]]:
    cols = [
        "item_id",
        "market",
        "category",
        "current_price",
        "recommended_price",
        "price_change_pct",
        "expected_quantity",
        "baseline_quantity",
        "expected_profit",
        "baseline_profit",
        "elasticity",
        "ci_low",
        "ci_high",
        "unit_cost",
        "binding",
        "status",
        "reason",
        "extrapolated",
        "too_wide",
        "uplift_low_pct",
        "uplift_high_pct",
    ]
    have = plan.select([c for c in cols if c in plan.columns]).head(MAX_ROWS)
    out = []
    for r in have.iter_rows(named=True):
        row = {k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
        row["currency"] = currency.get(str(r["market"]), "")
        row["why"] = _why(r)
        row["curve"] = _curve(r)
        out.append(row)
    return out


def _script_json(doc: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` breaks out)."""
    text = json.dumps(doc, default=str, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plan_explorer(
    plan: pl.DataFrame, currency: dict[str, str], skipped: pl.DataFrame | None = None
) -> str:
    """The explorer's HTML: controls, chart, table, detail panel, skipped rows, script."""
    rows = _rows(plan, currency)
    markets = sorted({str(r["market"]) for r in rows})
    shapes = {m: SHAPES[k % len(SHAPES)] for k, m in enumerate(markets)}
    doc = {"rows": rows, "shapes": shapes}
    options = "".join(f'<option value="{esc(m)}">{esc(m)}</option>' for m in markets)
    left_out = (
        f'<p class="note">First {MAX_ROWS:,} of {plan.height:,} rows in the explorer.</p>'
        if plan.height > MAX_ROWS
        else ""
    )
    skipped_html = ""
    if skipped is not None and skipped.height:
        items = "".join(
            f"<li><code>{esc(r.get('item_id'))}/{esc(r.get('market'))}</code>: "
            f"{esc(r.get('reason'))}</li>"
            for r in skipped.head(200).iter_rows(named=True)
        )
        skipped_html = (
            f'<h3>Skipped rows ({skipped.height:,})</h3><ul id="plan-skipped">{items}</ul>'
        )
    return f"""<div id="plan-explorer"><style>{EXPLORER_CSS}</style>
<div class="controls">
<label>Filter <input id="plan-filter" type="search" placeholder="item, market, category, constraint"></label>
<label>Market <select id="plan-market"><option value="">all</option>{options}</select></label>
<span id="plan-count" class="note"></span>
</div>
<figure><svg id="plan-chart" role="img" aria-label="price change and profit uplift per row, one marker shape per market" viewBox="0 0 640 260" width="100%"></svg>
<figcaption>Each row of the plan: price change (x) and expected profit uplift over the horizon (y, percent of the row's baseline profit). Markets differ by marker shape and colour; click a marker or a row for why.</figcaption></figure>
<div id="plan-why" class="why" hidden></div>
<div class="tw"><table id="plan-table"><thead><tr></tr></thead><tbody></tbody></table></div>
{left_out}
{skipped_html}
<script type="application/json" id="plan-data">{_script_json(doc)}</script>
<script>{_JS}</script>
</div>"""


EXPLORER_CSS = """
#plan-explorer .controls { display: flex; gap: 16px; align-items: center; margin: 8px 0; }
#plan-explorer input, #plan-explorer select { font: inherit; padding: 2px 6px; }
#plan-table th { cursor: pointer; user-select: none; }
#plan-table th[aria-sort=ascending]::after { content: " ▲"; }
#plan-table th[aria-sort=descending]::after { content: " ▼"; }
#plan-table tbody tr { cursor: pointer; }
#plan-table tbody tr.sel { background: #fff4d6; }
#plan-table tbody tr.skipped td { color: var(--muted); font-style: italic; }
.why { margin: 10px 0; padding: 10px 14px; border: 1px solid var(--line);
       border-left: 4px solid var(--accent); background: #fafbfc; }
.why h4 { margin: 0 0 6px; }
.why svg { max-width: 100%; }
"""

_JS = r"""
(function () {
  var doc = JSON.parse(document.getElementById('plan-data').textContent);
  var rows = doc.rows, shapes = doc.shapes;
  var colours = ['#1f4e79', '#c0504d', '#2e7d32', '#8064a2', '#b26a00', '#4bacc6'];
  var marketList = Object.keys(shapes).sort();
  function colour(m) { return colours[marketList.indexOf(m) % colours.length]; }
  var cols = [
    ['item_id', 'item'], ['market', 'market'], ['current_price', 'current'],
    ['recommended_price', 'recommended'], ['price_change_pct', 'change %'],
    ['expected_profit', 'exp. profit'], ['binding', 'binding'], ['status', 'status']];
  var sortKey = 'price_change_pct', sortDir = -1, selected = null, PAGE = 100;
  var NS = 'http://www.w3.org/2000/svg';
  function el(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(v, d) {
    if (v === null || v === undefined || v === '') return '';
    if (typeof v !== 'number') return String(v);
    return v.toLocaleString('en-US', {minimumFractionDigits: d, maximumFractionDigits: d});
  }
  function uplift(r) {  // percent of |baseline profit|: comparable across currencies
    if (r.expected_profit === null || r.baseline_profit === null ||
        r.expected_profit === undefined || r.baseline_profit === undefined ||
        !r.baseline_profit) return null;
    return (r.expected_profit - r.baseline_profit) / Math.abs(r.baseline_profit) * 100;
  }
  function marker(shape, x, y, c) {
    var s = 5;
    if (shape === 'square') return el('rect', {x: x - s, y: y - s, width: 2 * s, height: 2 * s, fill: c});
    if (shape === 'triangle') return el('polygon', {points: [x, y - s - 1, x - s - 1, y + s, x + s + 1, y + s].join(' '), fill: c});
    if (shape === 'diamond') return el('polygon', {points: [x, y - s - 1, x + s + 1, y, x, y + s + 1, x - s - 1, y].join(' '), fill: c});
    if (shape === 'cross') return el('path', {d: 'M' + (x - s) + ' ' + (y - s) + 'L' + (x + s) + ' ' + (y + s) + 'M' + (x - s) + ' ' + (y + s) + 'L' + (x + s) + ' ' + (y - s), stroke: c, 'stroke-width': 2.5});
    if (shape === 'star') return el('polygon', {points: [x, y - 6, x + 2, y - 2, x + 6, y - 2, x + 3, y + 1, x + 4, y + 6, x, y + 3, x - 4, y + 6, x - 3, y + 1, x - 6, y - 2, x - 2, y - 2].join(' '), fill: c});
    return el('circle', {cx: x, cy: y, r: s, fill: c});
  }
  function visible() {
    var q = document.getElementById('plan-filter').value.trim().toLowerCase();
    var m = document.getElementById('plan-market').value;
    return rows.filter(function (r) {
      if (m && r.market !== m) return false;
      if (!q) return true;
      return [r.item_id, r.market, r.category, r.binding, r.status, r.reason]
        .join(' ').toLowerCase().indexOf(q) >= 0;
    }).sort(function (a, b) {
      var x = a[sortKey], y = b[sortKey];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sortDir;
    });
  }
  function range(values) {
    var v = values.filter(function (x) { return x !== null && isFinite(x); });
    if (!v.length) return [0, 1];
    var lo = Math.min.apply(null, v.concat([0])), hi = Math.max.apply(null, v.concat([0]));
    if (lo === hi) { lo -= 1; hi += 1; }
    var pad = (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }
  function drawChart(shown) {
    var svg = document.getElementById('plan-chart');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 640, H = 260, L = 64, R = 110, T = 12, B = 34;
    var xr = range(shown.map(function (r) { return r.price_change_pct; }));
    var yr = range(shown.map(uplift));
    function sx(v) { return L + (v - xr[0]) / (xr[1] - xr[0]) * (W - L - R); }
    function sy(v) { return H - B - (v - yr[0]) / (yr[1] - yr[0]) * (H - T - B); }
    svg.appendChild(el('line', {x1: sx(0), x2: sx(0), y1: T, y2: H - B, stroke: '#bbb'}));
    svg.appendChild(el('line', {x1: L, x2: W - R, y1: sy(0), y2: sy(0), stroke: '#bbb'}));
    svg.appendChild(el('text', {x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 11}, 'price change %'));
    svg.appendChild(el('text', {x: 12, y: (T + H - B) / 2, 'font-size': 11, transform: 'rotate(-90 12 ' + (T + H - B) / 2 + ')', 'text-anchor': 'middle'}, 'profit uplift %'));
    [xr[0], 0, xr[1]].forEach(function (v) {
      if (v === 0 && Math.min(Math.abs(sx(0) - sx(xr[0])), Math.abs(sx(0) - sx(xr[1]))) < 24) return;
      svg.appendChild(el('text', {x: sx(v), y: H - B + 13, 'text-anchor': 'middle', 'font-size': 10}, num(v, 0)));
    });
    [yr[0], 0, yr[1]].forEach(function (v) {
      if (v === 0 && Math.min(Math.abs(sy(0) - sy(yr[0])), Math.abs(sy(0) - sy(yr[1]))) < 14) return;
      svg.appendChild(el('text', {x: L - 4, y: sy(v) + 3, 'text-anchor': 'end', 'font-size': 10}, num(v, 0)));
    });
    shown.forEach(function (r) {
      var u = uplift(r);
      if (u === null || r.price_change_pct === null) return;
      var g = marker(shapes[r.market], sx(r.price_change_pct), sy(u), colour(r.market));
      g.setAttribute('class', 'pt');
      g.setAttribute('data-key', r.item_id + '/' + r.market);
      g.appendChild(el('title', {}, r.item_id + '/' + r.market));
      g.addEventListener('click', function () { select(r); });
      svg.appendChild(g);
    });
    marketList.forEach(function (m, k) {
      var y = T + 10 + 18 * k;
      svg.appendChild(marker(shapes[m], W - R + 18, y, colour(m)));
      svg.appendChild(el('text', {x: W - R + 30, y: y + 4, 'font-size': 11}, m));
    });
  }
  function drawTable(shown) {
    var head = document.querySelector('#plan-table thead tr');
    if (!head.children.length) {
      cols.forEach(function (c) {
        var th = document.createElement('th');
        th.textContent = c[1];
        th.setAttribute('data-col', c[0]);
        th.addEventListener('click', function () {
          sortDir = sortKey === c[0] ? -sortDir : 1;
          sortKey = c[0];
          render();
        });
        head.appendChild(th);
      });
    }
    Array.prototype.forEach.call(head.children, function (th) {
      var k = th.getAttribute('data-col');
      if (k === sortKey) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    var body = document.querySelector('#plan-table tbody');
    body.innerHTML = '';
    shown.slice(0, PAGE).forEach(function (r) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-key', r.item_id + '/' + r.market);
      if (r.status && r.status !== 'optimized') tr.className = 'skipped';
      if (selected === r) tr.className += ' sel';
      cols.forEach(function (c) {
        var td = document.createElement('td'), v = r[c[0]];
        td.textContent = typeof v === 'number' ? num(v, c[0] === 'price_change_pct' ? 1 : 2) : (v || '');
        if (typeof v === 'number') td.className = 'num';
        tr.appendChild(td);
      });
      tr.addEventListener('click', function () { select(r); });
      body.appendChild(tr);
    });
    document.getElementById('plan-count').textContent = shown.length + ' of ' + rows.length +
      ' rows' + (shown.length > PAGE ? ' (table: first ' + PAGE + '; filter to narrow)' : '');
  }
  function curveSvg(r) {
    var c = r.curve;
    if (!c) return null;
    var W = 520, H = 200, L = 56, R = 12, T = 10, B = 30;
    var svg = el('svg', {viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, 'class': 'curve'});
    var y = c.profit || c.q, label = c.profit ? 'profit (horizon)' : 'units (horizon)';
    var lo = Math.min.apply(null, y), hi = Math.max.apply(null, y);
    if (lo === hi) { lo -= 1; hi += 1; }
    var pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
    var p0 = c.p[0], p1 = c.p[c.p.length - 1];
    function sx(v) { return L + (v - p0) / (p1 - p0) * (W - L - R); }
    function sy(v) { return H - B - (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo) * (H - T - B); }
    var pts = c.p.map(function (p, k) { return sx(p) + ',' + sy(y[k]); }).join(' ');
    svg.appendChild(el('polyline', {points: pts, fill: 'none', stroke: '#2e7d32', 'stroke-width': 2}));
    [[r.current_price, '#555', '4 3', 'current'], [r.recommended_price, '#c0504d', '', 'recommended']].forEach(function (m) {
      svg.appendChild(el('line', {x1: sx(m[0]), x2: sx(m[0]), y1: T, y2: H - B, stroke: m[1], 'stroke-dasharray': m[2]}));
      svg.appendChild(el('text', {x: sx(m[0]) + 3, y: T + 10, 'font-size': 10, fill: m[1]}, m[3]));
    });
    svg.appendChild(el('text', {x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 11}, 'price (' + (r.currency || 'market currency') + ')'));
    svg.appendChild(el('text', {x: L - 4, y: sy(hi) + 10, 'text-anchor': 'end', 'font-size': 10}, num(hi, 0)));
    svg.appendChild(el('text', {x: L - 4, y: sy(lo), 'text-anchor': 'end', 'font-size': 10}, num(lo, 0)));
    svg.appendChild(el('text', {x: L + 4, y: T + 22, 'font-size': 10, fill: '#2e7d32'}, label));
    return svg;
  }
  function select(r) {
    selected = r;
    var box = document.getElementById('plan-why');
    box.hidden = false;
    box.innerHTML = '';
    var h = document.createElement('h4');
    h.textContent = 'Why ' + num(r.recommended_price, 2) + ' ' + (r.currency || '') + ' for ' + r.item_id + ' in ' + r.market + '?';
    box.appendChild(h);
    var lines = [
      r.why,
      'Current price ' + num(r.current_price, 2) + ', recommended ' + num(r.recommended_price, 2) + ' (' + num(r.price_change_pct, 1) + '%).',
      r.elasticity === null || r.elasticity === undefined ? 'No elasticity estimate.' :
        'Elasticity ' + num(r.elasticity, 2) + (r.ci_low !== null && r.ci_low !== undefined ? ' (95% interval ' + num(r.ci_low, 2) + ' to ' + num(r.ci_high, 2) + ')' : '') + '.',
      'Binding constraints: ' + (r.binding || 'none') + '.'
    ];
    if (r.extrapolated) lines.push('Outside the prices seen in the history (extrapolated): treat the expected units with care.');
    lines.forEach(function (t) { var p = document.createElement('p'); p.textContent = t; box.appendChild(p); });
    var svg = curveSvg(r);
    if (svg) box.appendChild(svg);
    render(true);
  }
  function render(keepWhy) {
    var shown = visible();
    drawTable(shown);
    drawChart(shown);
  }
  document.getElementById('plan-filter').addEventListener('input', function () { render(); });
  document.getElementById('plan-market').addEventListener('change', function () { render(); });
  render();
})();
"""
