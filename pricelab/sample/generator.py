"""Seeded generator of a synthetic luxury-fashion marketplace in the contract's input format.

Demand per item × market × week is Poisson with a constant-elasticity mean::

    log mu = log(baseline) + elasticity * log(price / ref_price)
             + season_sin * sin(2 pi doy / 365.25) + season_cos * cos(2 pi doy / 365.25)
             + promo_effect * promo + trend * days_since_start / 365.25

(``doy`` is the day of year of the week's Monday), the same promo, Fourier and trend
controls that :mod:`pricelab.elasticity` uses by default.

Prices follow a schedule drawn before, and independently of, the demand noise (list-price
changes, end-of-season markdown spells, short promotions), so unbiased estimators recover
the truth written to ``true_elasticities.csv``. Every float is rounded to the precision it
is written with before it is used, so the files hold the exact truth of the data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from pricelab.errors import UsageError

# market, currency, fx (per EUR), vat, price level, gross rounding step, log volume, elasticity shift
MARKETS = (
    ("US", "USD", 1.08, 0.00, 1.05, 5.0, 0.35, 0.00),
    ("GB", "GBP", 0.85, 0.20, 0.98, 5.0, -0.15, -0.15),
    ("DE", "EUR", 1.00, 0.19, 1.00, 5.0, -0.25, -0.20),
    ("JP", "JPY", 162.0, 0.10, 1.15, 1000.0, -0.20, 0.10),
    ("CN", "CNY", 7.80, 0.13, 1.20, 100.0, 0.20, 0.20),
)
MARKET_SHARE = (0.92, 0.80, 0.85, 0.68, 0.75)  # probability an item is listed in the market
# category: (median list EUR, log sd, mean elasticity, log volume, season amplitude, peak isoweek)
CATEGORIES = {
    "bags": (2400.0, 0.35, -1.55, -0.25, 0.30, 50),
    "shoes": (780.0, 0.25, -2.10, 0.00, 0.20, 15),
    "ready-to-wear": (1150.0, 0.45, -2.45, -0.05, 0.25, 40),
    "accessories": (380.0, 0.35, -2.75, 0.35, 0.25, 49),
    "jewellery": (1300.0, 0.60, -1.40, -0.35, 0.35, 51),
}
CATEGORY_WEIGHTS = (0.25, 0.20, 0.25, 0.18, 0.12)
BRANDS = (
    "Maison Arlet",
    "Vercelli",
    "Holloway & Finch",
    "Santerre",
    "Kaito Mori",
    "Belcaro",
    "Orsini Milano",
    "Lune Paris",
)
SEASONS = ("SS", "FW", "CORE")
SALE_WEEK = {"SS": 26, "FW": 51}  # ISO week in which each end-of-season sale starts
TEST_STEPS = (-0.15, -0.10, -0.05, 0.05, 0.10, 0.15)
YEAR_DAYS = 365.25
FILES = ("sales", "items", "costs", "markets", "inventory", "true_elasticities")


def _round_step(x: np.ndarray, step: float | np.ndarray) -> np.ndarray:
    return np.maximum(np.round(x / step), 1.0) * step


def _fmt(values, kind: str) -> list[str]:
    """Format a column with a fixed, version-independent text form."""
    if kind == "s":
        text = ["" if v is None else str(v) for v in values]
        return [
            f'"{t.replace(chr(34), chr(34) * 2)}"' if any(c in t for c in ',"\n') else t
            for t in text
        ]
    if kind == "d":
        return [str(int(v)) for v in values]
    return [f"{float(v) + 0.0:.{kind}f}" for v in values]  # + 0.0 turns -0.0 into 0.0


def _write_csv(path: Path, columns: dict[str, tuple[object, str]]) -> Path:
    cols = [_fmt(values, kind) for values, kind in columns.values()]
    lines = [",".join(columns)] + [",".join(row) for row in zip(*cols, strict=True)]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def _items(rng: np.random.Generator, n_items: int, n_weeks: int) -> dict[str, np.ndarray]:
    cats = list(CATEGORIES)
    cat = rng.choice(len(cats), size=n_items, p=CATEGORY_WEIGHTS)
    med, sd = (np.array([CATEGORIES[c][k] for c in cats]) for k in (0, 1))
    list_eur = _round_step(med[cat] * np.exp(sd[cat] * rng.standard_normal(n_items)), 5.0)
    return {
        "item_id": np.array([f"IT{i + 1:04d}" for i in range(n_items)]),
        "cat": cat,
        "brand": rng.integers(0, len(BRANDS), n_items),
        "boutique": rng.integers(1, 11, n_items),
        "season": rng.choice(3, size=n_items, p=(0.4, 0.4, 0.2)),
        "list_eur": list_eur,
        "cost_ratio": rng.uniform(0.40, 0.55, n_items),
        "hero": rng.random(n_items) < 0.10,
        "elast_dev": rng.normal(0.0, 0.25, n_items),
        "pop": rng.normal(-0.45, 0.7, n_items),
        "launch": np.where(
            rng.random(n_items) < 0.2, rng.integers(4, max(5, min(52, n_weeks // 2)), n_items), 0
        ),
    }


def _pairs(rng: np.random.Generator, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    listed = rng.random((n_items, len(MARKETS))) < np.array(MARKET_SHARE)
    listed[~listed.any(axis=1), 0] = True
    item_idx, market_idx = np.nonzero(listed)
    return item_idx, market_idx


def _truth(rng, items, pi, pm) -> dict[str, np.ndarray]:
    n = len(pi)
    cat = items["cat"][pi]
    spec = np.array([CATEGORIES[c][2:] for c in CATEGORIES])  # elasticity, volume, amp, peak
    mkt = np.array([m[6:8] for m in MARKETS])
    elast = spec[cat, 0] + items["elast_dev"][pi] + mkt[pm, 1] + rng.normal(0.0, 0.10, n)
    pop = np.where(items["hero"][pi], rng.normal(2.3, 0.25, n), items["pop"][pi])
    base = np.exp(spec[cat, 1] + mkt[pm, 0] + pop + rng.normal(0.0, 0.3, n))
    amp = spec[cat, 2] * rng.uniform(0.7, 1.3, n)
    phase = 2 * np.pi * (spec[cat, 3] + rng.integers(-3, 4, n)) / 52
    return {
        "elasticity": np.round(np.clip(elast, -4.0, -0.55), 4),
        "baseline_quantity": np.round(np.clip(base, 0.05, 25.0), 4),
        "promo_effect": np.round(rng.normal(0.25, 0.05, n), 4),
        "trend": np.round(rng.normal(0.0, 0.08, n), 4),
        "season_sin": np.round(amp * np.sin(phase), 4),
        "season_cos": np.round(amp * np.cos(phase), 4),
    }


def _list_changes(rng, items, pi, n_weeks) -> tuple[np.ndarray, np.ndarray]:
    """Log list-price multipliers per pair × week and log unit-cost multipliers per item × week."""
    n_items, n = len(items["cat"]), len(pi)
    log_list, log_cost = np.zeros((n, n_weeks)), np.zeros((n_items, n_weeks))
    for i in range(n_items):
        for _ in range(1 + int(rng.random() < 0.5)):  # brand-wide list-price increases
            week, pct = int(rng.integers(8, max(n_weeks - 4, 9))), rng.uniform(0.03, 0.09)
            rows = np.nonzero(pi == i)[0]
            for row, lag in zip(rows, rng.integers(0, 5, len(rows)), strict=True):
                log_list[row, week + lag :] += np.log1p(pct)
            if rng.random() < 0.6:  # cost-driven: the boutique's cost rose too
                log_cost[i, week:] += np.log1p(pct * rng.uniform(0.8, 1.2))
        if rng.random() < 0.3:  # a supplier cost change that is not passed on
            log_cost[i, int(rng.integers(4, n_weeks)) :] += np.log1p(rng.uniform(-0.06, 0.06))
    for p in range(n):  # boutiques reprice (the buy-box moves): piecewise-constant levels
        cuts: list[int] = np.sort(rng.integers(1, n_weeks, rng.poisson(5))).tolist()
        for a, b in zip([0, *cuts], [*cuts, n_weeks], strict=True):
            log_list[p, a:b] += np.clip(rng.normal(0.0, 0.08), -0.2, 0.2)
        if rng.random() < 0.7:  # a randomised price test of 4-8 weeks
            w = int(rng.integers(0, n_weeks - 4))
            log_list[p, w : w + int(rng.integers(4, 9))] += np.log1p(rng.choice(TEST_STEPS))
    for p in np.nonzero(rng.random(n) < 0.3)[0].tolist():  # permanent reprice of a slow carry-over
        week = int(rng.integers(min(20, n_weeks // 2), n_weeks))
        log_list[p, week:] += np.log1p(-rng.uniform(0.10, 0.25))
    return log_list, log_cost


def _discounts(rng, season, n_weeks, isoweek) -> tuple[np.ndarray, np.ndarray]:
    """Markdown/promotion discount per pair × week and the promo flag."""
    n = len(season)
    disc, promo = np.zeros((n, n_weeks)), np.zeros((n, n_weeks), dtype=np.int64)
    for s_name, target in SALE_WEEK.items():
        starts = np.nonzero(isoweek == target)[0]
        for k in [starts[0] - 52, *starts] if len(starts) else []:  # incl. last year's sale
            own = season == SEASONS.index(s_name)
            core = season == SEASONS.index("CORE")
            join = (own & (rng.random(n) < 0.8)) | (core & (rng.random(n) < 0.2))
            for p in np.nonzero(join)[0].tolist():
                start = int(k + rng.integers(-1, 3))
                b = start + int(rng.integers(1, 3))  # markdowns deepen in three stages
                c, end = b + int(rng.integers(1, 3)), b + int(rng.integers(3, 7))
                d1 = rng.uniform(0.20, 0.28) if season[p] != 2 else rng.uniform(0.15, 0.20)
                d2 = d1 + rng.uniform(0.04, 0.08)
                d3 = min(0.40, d2 + rng.uniform(0.04, 0.08))
                a, b, c, end = (max(x, 0) for x in (start, b, c, end))
                disc[p, a:b], disc[p, b:c], disc[p, c:end] = d1, d2, d3
                promo[p, a:end] = 1
    for p in range(n):  # short promotions (private sales, features), sometimes with a discount
        for w in np.nonzero(rng.random(n_weeks) < 0.03)[0].tolist():
            stop = w + int(rng.integers(1, 3))
            d = 0.0 if rng.random() < 0.5 else rng.uniform(0.10, 0.15)
            disc[p, w:stop] = np.maximum(disc[p, w:stop], d)
            promo[p, w:stop] = 1
    return disc, promo


def generate_sample(
    out_dir: str | Path,
    *,
    seed: int = 20261127,
    n_items: int = 150,
    n_weeks: int = 104,
    start: str = "2024-01-01",
) -> dict[str, Path]:
    """Write a synthetic luxury marketplace (contract input tables plus the truth) to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write to; created if missing.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives byte-identical files.
    n_items : int
        Number of items (at least 10).
    n_weeks : int
        Number of weekly periods (at least 8).
    start : str
        ISO date of the first week; must be a Monday.

    Returns
    -------
    dict of str to Path
        ``sales``, ``items``, ``costs``, ``markets``, ``inventory`` and ``true_elasticities``
        mapped to the CSV files written.

    Raises
    ------
    UsageError
        An argument is out of range or ``start`` is not an ISO date on a Monday.
    """
    try:
        t0 = dt.date.fromisoformat(start)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"start: '{start}' is not an ISO date (YYYY-MM-DD)") from exc
    if t0.weekday() != 0:
        raise UsageError(f"start: {start} is a {t0:%A}; weeks start on Monday")
    if n_items < 10 or n_weeks < 8:
        raise UsageError(f"n_items must be >= 10 and n_weeks >= 8 (got {n_items}, {n_weeks})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dates = [t0 + dt.timedelta(weeks=w) for w in range(n_weeks)]
    isoweek = np.array([d.isocalendar().week for d in dates])

    items = _items(rng, n_items, n_weeks)
    pi, pm = _pairs(rng, n_items)
    truth = _truth(rng, items, pi, pm)
    log_list, log_cost = _list_changes(rng, items, pi, n_weeks)
    disc, promo = _discounts(rng, items["season"][pi], n_weeks, isoweek)

    fx, vat, level, step = (np.array([m[k] for m in MARKETS])[pm][:, None] for k in (2, 3, 4, 5))
    gross = _round_step(
        items["list_eur"][pi][:, None] * fx * level * (1 + vat) * np.exp(log_list), step
    )  # shelf prices are round including VAT
    list_net = gross / (1 + vat)
    price = np.round(list_net * (1 - disc), 2)
    ref_price = np.round(list_net[:, 0], 2)
    cost = np.round(items["list_eur"][:, None] * items["cost_ratio"][:, None] * np.exp(log_cost), 2)

    theta = 2 * np.pi * np.array([d.timetuple().tm_yday for d in dates]) / YEAR_DAYS
    years = np.array([(d - t0).days for d in dates]) / YEAR_DAYS
    log_mu = (
        np.log(truth["baseline_quantity"])[:, None]
        + truth["elasticity"][:, None] * np.log(price / ref_price[:, None])
        + truth["season_sin"][:, None] * np.sin(theta)
        + truth["season_cos"][:, None] * np.cos(theta)
        + truth["promo_effect"][:, None] * promo
        + truth["trend"][:, None] * years
    )
    qty = rng.poisson(np.exp(log_mu))

    keep = np.arange(n_weeks)[None, :] >= items["launch"][pi][:, None]
    rows_p, rows_w = np.nonzero(keep)  # row-major: sorted by pair (item, market), then date
    mkt_names = np.array([m[0] for m in MARKETS])
    iso = np.array([d.isoformat() for d in dates])
    paths = {
        "sales": _write_csv(
            out / "sales.csv",
            {
                "item_id": (items["item_id"][pi][rows_p], "s"),
                "market": (mkt_names[pm][rows_p], "s"),
                "date": (iso[rows_w], "s"),
                "price": (price[rows_p, rows_w], "2"),
                "quantity": (qty[rows_p, rows_w], "d"),
                "promo": (promo[rows_p, rows_w], "d"),
                "unit_cost": (cost[pi[rows_p], rows_w], "2"),
            },
        )
    }

    cats = np.array(list(CATEGORIES))
    paths["items"] = _write_csv(
        out / "items.csv",
        {
            "item_id": (items["item_id"], "s"),
            "category": (cats[items["cat"]], "s"),
            "brand": (np.array(BRANDS)[items["brand"]], "s"),
            "boutique_id": ([f"BTQ{b:02d}" for b in items["boutique"]], "s"),
            "season": (np.array(SEASONS)[items["season"]], "s"),
        },
    )

    # costs: the current generic cost, plus landed costs (duties, freight) for some pairs
    landed = np.nonzero((pm >= 3) & (rng.random(len(pi)) < 0.3))[0]
    c_item = [*items["item_id"], *items["item_id"][pi[landed]]]
    c_mkt = [None] * n_items + list(mkt_names[pm[landed]])
    c_val = [
        *cost[:, -1],
        *np.round(cost[pi[landed], -1] * rng.uniform(1.05, 1.15, len(landed)), 2),
    ]
    paths["costs"] = _write_csv(
        out / "costs.csv",
        {"item_id": (c_item, "s"), "market": (c_mkt, "s"), "unit_cost": (c_val, "2")},
    )

    paths["markets"] = _write_csv(
        out / "markets.csv",
        {
            "market": ([m[0] for m in MARKETS], "s"),
            "currency": ([m[1] for m in MARKETS], "s"),
            "fx_rate": ([m[2] for m in MARKETS], "4"),
            "vat_rate": ([m[3] for m in MARKETS], "2"),
        },
    )

    # inventory: shared stock, stock dedicated to one market, or both
    weekly = np.exp(log_mu[:, -1])
    kind = rng.choice(3, size=n_items, p=(0.7, 0.2, 0.1))  # shared, shared + one, dedicated
    inv_item: list[str] = []
    inv_mkt: list[str | None] = []
    inv_stock: list[int] = []
    for i in range(n_items):
        rows = np.nonzero(pi == i)[0]
        if kind[i] < 2:
            inv_item.append(items["item_id"][i])
            inv_mkt.append(None)
            inv_stock.append(max(1, int(round(weekly[rows].sum() * rng.uniform(4, 26)))))
        if kind[i] > 0:
            for p in rng.choice(rows, size=min(len(rows), int(kind[i])), replace=False):
                inv_item.append(items["item_id"][i])
                inv_mkt.append(mkt_names[pm[p]])
                inv_stock.append(max(1, int(round(weekly[p] * rng.uniform(2, 12)))))
    paths["inventory"] = _write_csv(
        out / "inventory.csv",
        {"item_id": (inv_item, "s"), "market": (inv_mkt, "s"), "stock": (inv_stock, "d")},
    )

    paths["true_elasticities"] = _write_csv(
        out / "true_elasticities.csv",
        {
            "item_id": (items["item_id"][pi], "s"),
            "market": (mkt_names[pm], "s"),
            "elasticity": (truth["elasticity"], "4"),
            "ref_price": (ref_price, "2"),
            **{
                k: (truth[k], "4")
                for k in ("baseline_quantity", "promo_effect", "trend", "season_sin", "season_cos")
            },
        },
    )
    return paths
