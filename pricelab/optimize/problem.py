"""From a demand table and constraints to per-row arrays the formulations use.

Rows that cannot be optimised (see :mod:`pricelab.optimize.demand_table`: NaN or non-negative elasticity, missing or
non-positive base price / quantity / cost, negative stock) are skipped with a reason
(or raise :class:`DataError` with ``strict=True``). Each row gets a price interval
[lo, hi] from bounds, margin floor, dedicated inventory and frozen items, with the
name of the constraint that sets each end (for ``binding`` and for diagnosis).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

import numpy as np
import polars as pl

from pricelab.demand.curves import ConstantElasticity
from pricelab.errors import ConfigError, DataError
from pricelab.optimize.constraints import Constraints, Rules
from pricelab.optimize.demand_table import prepare, rules_per_row, skip_empty_stock
from pricelab.optimize.links import AverageChangeBudget, Link, StockPool, VolumeFloor

L = TypeVar("L", bound=Link)


@dataclass
class Problem:
    """Row arrays (kept rows only) plus linking constraints."""

    frame: pl.DataFrame
    item: np.ndarray
    market: np.ndarray
    p0: np.ndarray
    q0: np.ndarray
    e: np.ndarray
    c: np.ndarray
    fx: np.ndarray
    horizon: float
    objective: str
    lo: np.ndarray
    hi: np.ndarray
    lo_src: np.ndarray
    hi_src: np.ndarray
    frozen: np.ndarray
    parity_gap: np.ndarray  # NaN where no parity
    ladder_spacing: np.ndarray  # NaN where no ladder
    ladder_offset: np.ndarray
    sources: dict[str, np.ndarray]  # each row-level limit: name -> (lo or hi) value
    settings: dict[str, np.ndarray]  # each constraint's setting per row (for messages)
    links: list[Link] = field(default_factory=list)
    ordering: list[tuple[np.ndarray, np.ndarray, float, str]] = field(default_factory=list)
    skipped: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"item_id": pl.String, "market": pl.String, "reason": pl.String}
        )
    )

    def links_of(self, cls: type[L]) -> list[L]:
        """The linking constraints of one class (e.g. every :class:`VolumeFloor`)."""
        return [lk for lk in self.links if isinstance(lk, cls)]

    @property
    def n(self) -> int:
        """Number of rows optimised."""
        return int(self.p0.size)

    @property
    def cost(self) -> np.ndarray:
        """Unit cost in the objective (zero when maximising revenue)."""
        return self.c if self.objective == "profit" else np.zeros_like(self.c)

    @property
    def inelastic(self) -> np.ndarray:
        """Rows with -1 <= e < 0: profit rises with price up to the upper bound."""
        return self.e >= -1.0

    def label(self, i: int) -> str:
        """``ITEM/MARKET`` for messages."""
        return f"{self.item[i]}/{self.market[i]}"

    def _rows(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Row array shaped to broadcast against ``p`` ((n,) or (n, K) candidates)."""
        return x[:, None] if np.ndim(p) == 2 else x

    def quantity(self, p: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Weekly units at prices ``p``: shape (n,), (n, K), or (len(rows),) with ``rows``.

        Open price limits (0 when nothing sets a floor, inf when nothing sets a cap) give
        the limits of the demand curve, inf and 0 units, without evaluating 0 ** e.
        """
        curve = self.curve(rows)
        return (curve.expanded() if np.ndim(p) == 2 else curve).quantity(p)

    def curve(self, rows: np.ndarray | None = None) -> ConstantElasticity:
        """The rows' demand curve (all rows, or ``rows``)."""
        if rows is None:
            return ConstantElasticity(self.p0, self.q0, self.e)
        return ConstantElasticity(self.p0[rows], self.q0[rows], self.e[rows])

    def objective_value(self, p: np.ndarray) -> np.ndarray:
        """Per-row objective over the horizon at prices ``p`` ((n,) or (n, K)), base currency."""
        r = self._rows
        return self.horizon * (p - r(self.cost, p)) * self.quantity(p) / r(self.fx, p)

    def take(self, rows: np.ndarray) -> Problem:
        """The sub-problem of ``rows`` (sorted row indices): their row arrays, and the links
        and ordering pairs among them (a link must lie wholly inside ``rows`` or outside)."""
        pos = np.full(self.n, -1)
        pos[rows] = np.arange(rows.size)
        cut = {
            f.name: getattr(self, f.name)[rows]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        links = []
        for lk in self.links:
            inside = pos[lk.rows] >= 0
            if inside.any() and not inside.all():
                raise ValueError(f"take: {lk.name} reaches rows outside the sub-problem")
            if inside.all():
                links.append(replace(lk, rows=pos[lk.rows]))
        ordering = []
        for lower, upper, f, name in self.ordering:
            both = (pos[lower] >= 0) & (pos[upper] >= 0)
            if both.any():
                ordering.append((pos[lower[both]], pos[upper[both]], f, name))
        return replace(
            self,
            frame=self.frame[rows],
            sources={k: v[rows] for k, v in self.sources.items()},
            settings={k: v[rows] for k, v in self.settings.items()},
            links=links,
            ordering=ordering,
            **cut,
        )

    def coupled_blocks(self, groups: np.ndarray) -> list[np.ndarray]:
        """Rows that parity (``groups``: each item's parity group, -1 outside), ordering or a
        link couples, split into independent blocks (connected components): each block's
        constraints involve its rows only. Rows that nothing couples are in no block."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        a: list[np.ndarray] = []
        b: list[np.ndarray] = []
        touched = groups >= 0
        for g in np.unique(groups[groups >= 0]):
            r = np.flatnonzero(groups == g)
            a.append(r[:-1])
            b.append(r[1:])
        for lower, upper, _f, _name in self.ordering:
            a.append(lower)
            b.append(upper)
            touched[lower] = touched[upper] = True
        for lk in self.links:
            a.append(lk.rows[:-1])
            b.append(lk.rows[1:])
            touched[lk.rows] = True
        i = np.concatenate(a) if a else np.zeros(0, dtype=int)
        j = np.concatenate(b) if b else np.zeros(0, dtype=int)
        graph = coo_matrix((np.ones(i.size), (i, j)), shape=(self.n, self.n))
        _, label = connected_components(graph, directed=False)
        order = np.argsort(label, kind="stable")
        parts = np.split(order, np.flatnonzero(np.diff(label[order])) + 1)
        return [r for r in parts if touched[r[0]]]


def _extrapolation_cap(
    df: pl.DataFrame,
    cons: Constraints,
    lo: np.ndarray,
    hi: np.ndarray,
    lo_src: np.ndarray,
    hi_src: np.ndarray,
    sources: dict[str, np.ndarray],
    frozen: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cap prices at the observed range (``min_price``..``max_price``) widened by
    ``max_extrapolation_pct``; the cap yields wherever another constraint needs a price
    outside it (a margin floor above the widened range keeps its floor)."""
    m = cons.max_extrapolation_pct
    if m is None or not {"min_price", "max_price"} <= set(df.columns):
        sources["max_extrapolation_pct"] = np.full(df.height, np.nan)
        return lo, hi
    obs_lo = df["min_price"].cast(pl.Float64).to_numpy()
    obs_hi = df["max_price"].cast(pl.Float64).to_numpy()
    ok = np.isfinite(obs_lo) & np.isfinite(obs_hi) & (obs_lo > 0) & ~frozen
    cap_lo = np.where(ok, obs_lo * (1 - m / 100), np.nan)
    cap_hi = np.where(ok, obs_hi * (1 + m / 100), np.nan)
    use_lo = ok & (cap_lo > lo) & (cap_lo <= hi)
    new_lo = np.where(use_lo, cap_lo, lo)
    use_hi = ok & (cap_hi < hi) & (cap_hi >= new_lo)
    new_hi = np.where(use_hi, cap_hi, hi)
    lo_src[use_lo] = "max_extrapolation_pct"
    hi_src[use_hi] = "max_extrapolation_pct"
    sources["max_extrapolation_pct"] = np.where(use_lo, cap_lo, np.nan)
    return new_lo, new_hi


def build_problem(
    demand: pl.DataFrame, cons: Constraints, *, strict: bool = False, stock_floors: bool = True
) -> Problem:
    """Validate the demand table and compute each row's price interval and links.

    ``stock_floors=False`` (cross-price demand, where a row's units depend on its siblings'
    prices): a row's dedicated stock is a one-row :class:`StockPool` link instead of a
    price floor from its own demand curve.
    """
    # revenue needs no cost, unless a margin floor does (a row without one: profit unknown)
    margins = cons.rules.min_margin_pct is not None or any(
        "min_margin_pct" in ov.settings for ov in cons.overrides
    )
    df, skipped = prepare(demand, strict, cons.objective == "profit" or margins)
    rules = rules_per_row(df, cons)
    df, rules, skipped = skip_empty_stock(df, rules, skipped, strict)
    n = df.height
    f = {
        c: df[c].to_numpy().astype(float)
        for c in ("elasticity", "base_price", "base_quantity", "unit_cost", "fx_rate", "stock")
    }
    p0, q0, e, c, h = (
        f["base_price"],
        f["base_quantity"],
        f["elasticity"],
        f["unit_cost"],
        cons.horizon_weeks,
    )
    nan = np.full(n, np.nan)
    inc = np.array(
        [np.nan if r.bounds.max_increase_pct is None else r.bounds.max_increase_pct for r in rules]
    )
    dec = np.array(
        [np.nan if r.bounds.max_decrease_pct is None else r.bounds.max_decrease_pct for r in rules]
    )
    marg = np.array([np.nan if r.min_margin_pct is None else r.min_margin_pct for r in rules])
    inv = np.array([r.inventory for r in rules], dtype=bool)
    frozen = np.array([r.frozen for r in rules], dtype=bool)
    has_pool = "stock_pool" in df.columns
    pool = df["stock_pool"].cast(pl.String).to_numpy() if has_pool else np.full(n, None)
    stock = f["stock"]
    dedicated = inv & ~np.isnan(stock) & np.array([x is None for x in pool], dtype=bool)
    floors = dedicated & stock_floors
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_s = np.where(floors, ConstantElasticity(p0, h * q0, e).price_for_quantity(stock), np.nan)
    sources = {
        "max_decrease_pct": np.where(np.isnan(dec), np.nan, p0 * (1 - dec / 100)),
        "min_margin_pct": np.where(np.isnan(marg), np.nan, c / (1 - marg / 100)),
        "inventory": lo_s,
        "max_increase_pct": np.where(np.isnan(inc), np.nan, p0 * (1 + inc / 100)),
    }
    lo_names = ["max_decrease_pct", "min_margin_pct", "inventory"]
    lo_mat = np.vstack([np.nan_to_num(sources[k], nan=0.0) for k in lo_names])
    lo = lo_mat.max(axis=0)
    lo_src = np.where(lo > 0, np.array(lo_names, dtype=object)[lo_mat.argmax(axis=0)], "")
    hi = np.nan_to_num(sources["max_increase_pct"], nan=np.inf)
    hi_src = np.where(np.isfinite(hi), "max_increase_pct", "").astype(object)
    lo, hi = _extrapolation_cap(df, cons, lo, hi, lo_src, hi_src, sources, frozen)
    lo = np.where(frozen, p0, lo)
    hi = np.where(frozen, p0, hi)
    lo_src = np.where(frozen, "frozen", lo_src).astype(object)
    hi_src = np.where(frozen, "frozen", hi_src).astype(object)
    lad = [r.ladder for r in rules]
    prob = Problem(
        frame=df,
        item=df["item_id"].to_numpy().astype(object),
        market=df["market"].to_numpy().astype(object),
        p0=p0,
        q0=q0,
        e=e,
        c=c,
        fx=f["fx_rate"],
        horizon=h,
        objective=cons.objective,
        lo=lo,
        hi=hi,
        lo_src=lo_src,
        hi_src=hi_src,
        frozen=frozen,
        parity_gap=np.array(
            [np.nan if r.parity_gap_pct is None else r.parity_gap_pct / 100 for r in rules]
        ),
        ladder_spacing=np.array(
            [np.nan if (x is None or fr) else x.spacing for x, fr in zip(lad, frozen, strict=True)]
        ),
        ladder_offset=np.array([0.0 if x is None else x.offset for x in lad]),
        sources=sources,
        settings={
            "max_increase_pct": inc,
            "max_decrease_pct": dec,
            "min_margin_pct": marg,
            "stock": stock,
            "inventory": stock,
        },
        skipped=skipped,
    )
    prob.links = _links(prob, cons, rules, inv, pool, stock, nan)
    for i in np.flatnonzero(dedicated & ~floors).tolist():
        name = f"inventory ({prob.label(i)}, stock {stock[i]:g})"
        prob.links.append(StockPool(name, np.array([i]), float(stock[i]), prob.label(i)))
    prob.ordering = _ordering(prob, cons, demand)
    return prob


def _ordering(
    prob: Problem, cons: Constraints, demand: pl.DataFrame
) -> list[tuple[np.ndarray, np.ndarray, float, str]]:
    """Pairs (lower rows, upper rows, factor, name): p[upper] >= factor * p[lower], per market.

    Within each market, consecutive listed items present there are paired. Item ids that
    the demand table does not have raise ConfigError naming them.
    """
    if not cons.ordering:
        return []
    known = set(demand["item_id"].cast(pl.String).to_list())
    pos = {(it, m): i for i, (it, m) in enumerate(zip(prob.item, prob.market, strict=True))}
    markets = list(dict.fromkeys(prob.market.tolist()))
    out = []
    for od in cons.ordering:
        unknown = [x for x in od.items if x not in known]
        if unknown:
            line = f", line {od.line}" if od.line else ""
            raise ConfigError(
                f"{cons.source}{line}: ordering: unknown item id(s) "
                f"{', '.join(unknown)} (not in the demand table)"
            )
        lower, upper = [], []
        for m in markets:
            rows = [pos[(it, m)] for it in od.items if (it, m) in pos]
            lower += rows[:-1]
            upper += rows[1:]
        if lower:
            out.append((np.array(lower), np.array(upper), 1 + od.min_step_pct / 100, od.name))
    return out


def _links(
    prob: Problem,
    cons: Constraints,
    rules: list[Rules],
    inv: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    nan: np.ndarray,
) -> list[Link]:
    links: list[Link] = []
    everyone = np.arange(prob.n)
    shared: tuple[tuple[type[VolumeFloor] | type[AverageChangeBudget], float | None], ...] = (
        (VolumeFloor, cons.min_volume_pct),
        (AverageChangeBudget, cons.max_avg_change_pct),
    )
    for cls, val in shared:
        if val is not None and prob.n:
            links.append(cls(f"{cls.key} {val:g} (all rows)", everyone, val))
    cols = {k: prob.frame[k].to_list() for k in ("item_id", "market", "category")}
    for ov in cons.overrides:
        rows = np.flatnonzero(ov.mask(cols)) if prob.n else everyone
        where = ", ".join(f"{k}={'|'.join(v)}" for k, v in ov.where.items())
        for cls, _ in shared:
            if cls.key in ov.settings and rows.size:
                val = ov.settings[cls.key]
                links.append(cls(f"{cls.key} {val:g} ({where})", rows, val))
    pools: dict[str, list[int]] = {}
    for i, pid in enumerate(pool):
        if pid is not None and inv[i] and not np.isnan(stock[i]):
            pools.setdefault(pid, []).append(i)
    for pid, members in pools.items():
        vals = stock[members]
        if np.ptp(vals) > 1e-9 * max(1.0, abs(vals[0])):
            raise DataError(
                f"demand table: stock_pool {pid}: rows disagree on the pool's stock "
                f"({', '.join(f'{v:g}' for v in np.unique(vals))})"
            )
        links.append(
            StockPool(
                f"inventory pool {pid} (stock {vals[0]:g})",
                np.array(members),
                float(vals[0]),
                f"pool {pid}",
            )
        )
    return links
