"""A second bundled sample: two categories of close substitutes (cross-price demand).

A tote in four colours (``TOTE-BLK, TOTE-TAN, TOTE-RED, TOTE-WHT``) and a sneaker line
(``SNKR-LOW, SNKR-HIGH, SNKR-RUN``), each sold in two markets (DE, FR; both in EUR) for
104 weeks. Weekly units are Poisson with mean::

    log mu_i = log base_i + sum_j E_ij log(p_j / ref_j) + promo_effect * promo_i

with the true matrix ``E`` (own elasticity on the diagonal, cross elasticities between
siblings) written to ``substitutes_true_cross.csv``. Prices move independently per item
(list-price changes and short promotions), so the matrix is identified. The files are
``substitutes_sales.csv``, ``substitutes_items.csv``, ``substitutes_costs.csv`` and the
truth; ingest them into their own database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from pricelab.sample.generator import _write_csv

FILES = ("substitutes_sales", "substitutes_items", "substitutes_costs", "substitutes_true_cross")
MARKETS = ("DE", "FR")
#: category: items, list price (EUR), unit cost, base weekly units, own e, cross e (pairs)
CATEGORIES = {
    "tote": (("TOTE-BLK", "TOTE-TAN", "TOTE-RED", "TOTE-WHT"), 1450.0, 520.0, 40.0, -3.0, 0.55),
    "sneaker": (("SNKR-LOW", "SNKR-HIGH", "SNKR-RUN"), 620.0, 190.0, 60.0, -2.6, 0.6),
}


def _matrix(rng: np.random.Generator, n: int, own: float, cross: float) -> np.ndarray:
    E = np.round(rng.uniform(0.7, 1.3, (n, n)) * cross, 2)
    np.fill_diagonal(E, np.round(own + rng.uniform(-0.3, 0.3, n), 2))
    return E


def _prices(rng: np.random.Generator, ref: float, n_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """A list price that changes every ~10 weeks by -15..+15%, with 1-2 week promotions."""
    level = np.ones(n_weeks)
    t = 0
    while t < n_weeks:
        span = int(rng.integers(6, 14))
        level[t : t + span] = 1.0 + rng.choice([-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15])
        t += span
    promo = (rng.random(n_weeks) < 0.08).astype(np.int64)
    price = np.round(ref * level * np.where(promo == 1, 0.8, 1.0) / 5.0) * 5.0
    return price, promo


def generate_substitutes(
    out_dir: str | Path, *, seed: int = 20261202, n_weeks: int = 104, start: str = "2024-01-01"
) -> dict[str, Path]:
    """Write the substitutes sample to ``out_dir`` (same seed, byte-identical files)."""
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d0 = dt.date.fromisoformat(start)
    dates = [str(d0 + dt.timedelta(weeks=k)) for k in range(n_weeks)]
    sales: dict[str, list] = {k: [] for k in ("item_id", "market", "date", "price", "qty", "promo")}
    truth: dict[str, list] = {k: [] for k in ("item_id", "market", "other_item_id", "elasticity")}
    items: dict[str, list] = {"item_id": [], "category": [], "brand": []}
    costs: dict[str, list] = {"item_id": [], "unit_cost": []}
    for cat, (ids, ref, cost, base, own, cross) in CATEGORIES.items():
        n = len(ids)
        items["item_id"] += list(ids)
        items["category"] += [cat] * n
        items["brand"] += ["Maison Arlet"] * n
        costs["item_id"] += list(ids)
        costs["unit_cost"] += list(np.round(cost * rng.uniform(0.9, 1.1, n), 2))
        for m in MARKETS:
            E = _matrix(rng, n, own, cross)
            P, R = zip(*(_prices(rng, ref, n_weeks) for _ in range(n)), strict=True)
            price, promo = np.array(P), np.array(R)  # (n, weeks)
            mu = base * np.exp(E @ np.log(price / ref) + 0.25 * promo)
            q = rng.poisson(mu)
            for i, it in enumerate(ids):
                sales["item_id"] += [it] * n_weeks
                sales["market"] += [m] * n_weeks
                sales["date"] += dates
                sales["price"] += list(price[i])
                sales["qty"] += list(q[i])
                sales["promo"] += list(promo[i])
                for j, other in enumerate(ids):
                    truth["item_id"].append(it)
                    truth["market"].append(m)
                    truth["other_item_id"].append(other)
                    truth["elasticity"].append(E[i, j])
    p = {
        "substitutes_sales": _write_csv(
            out / "substitutes_sales.csv",
            {
                "item_id": (sales["item_id"], "s"),
                "market": (sales["market"], "s"),
                "date": (sales["date"], "s"),
                "price": (sales["price"], "2"),
                "quantity": (sales["qty"], "d"),
                "promo": (sales["promo"], "d"),
            },
        ),
        "substitutes_items": _write_csv(
            out / "substitutes_items.csv", {k: (v, "s") for k, v in items.items()}
        ),
        "substitutes_costs": _write_csv(
            out / "substitutes_costs.csv",
            {"item_id": (costs["item_id"], "s"), "unit_cost": (costs["unit_cost"], "2")},
        ),
        "substitutes_true_cross": _write_csv(
            out / "substitutes_true_cross.csv",
            {
                "item_id": (truth["item_id"], "s"),
                "market": (truth["market"], "s"),
                "other_item_id": (truth["other_item_id"], "s"),
                "elasticity": (truth["elasticity"], "2"),
            },
        ),
    }
    return p
