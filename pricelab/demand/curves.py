"""Demand curves: constant elasticity, linear, multinomial logit.

:class:`ConstantElasticity` is the one demand curve the package evaluates: optimize
(rows, candidate grids, elasticity draws), simulate, the report's curves and the
baseline's price adjustment all go through it rather than writing
``q0 * (p / p0) ** e`` inline. Its parameters are arrays that broadcast with numpy's
rules against the prices (shape them yourself: ``p0[:, None]`` against an ``(n, K)``
candidate grid, or weekly base quantities ``(n, W)`` against ``p0[:, None]``); they may
also be column expressions (polars ``Expr``, Spark ``Column``: anything that is not
array-like and overloads ``/``, ``*`` and ``**``), which gives the same curve as one
expression for that library to evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


def _lazy(*xs: Any) -> bool:
    """True when any of ``xs`` is a column expression rather than a number or an array."""
    return any(
        isinstance(x, pl.Expr)
        or not (isinstance(x, (int, float, list, tuple, pl.Series)) or hasattr(x, "__array__"))
        for x in xs
    )


@dataclass(frozen=True)
class ConstantElasticity:
    """q(p) = base_quantity * (p / base_price) ** elasticity (per week).

    Parameters are numpy arrays (or scalars) that broadcast against the prices, or polars
    expressions. For ``elasticity < 0`` the open price limits give the curve's limits
    without evaluating ``0 ** e``: infinite demand at price 0, none at an infinite price.
    """

    base_price: Any
    base_quantity: Any
    elasticity: Any

    def expanded(self, axes: int = 1) -> ConstantElasticity:
        """The same curve with ``axes`` trailing axes on each parameter (rows x candidates)."""
        idx = (...,) + (None,) * axes
        return ConstantElasticity(
            *(np.asarray(x)[idx] for x in (self.base_price, self.base_quantity, self.elasticity))
        )

    def ratio_power(self, price: Any) -> Any:
        """``(price / base_price) ** elasticity``: demand relative to the base quantity."""
        if _lazy(price, self.base_price, self.elasticity):
            return (price / self.base_price) ** self.elasticity
        return (np.asarray(price) / self.base_price) ** self.elasticity

    def quantity(self, price: Any) -> Any:
        """Expected weekly units at ``price`` (with the curve's limits at 0 and inf)."""
        if _lazy(price, self.base_price, self.base_quantity, self.elasticity):
            return self.base_quantity * (price / self.base_price) ** self.elasticity
        ratio = np.asarray(price, dtype=float) / self.base_price
        inside = (ratio > 0) & np.isfinite(ratio)
        if np.all(inside):
            return self.base_quantity * ratio**self.elasticity
        e = self.elasticity
        q = self.base_quantity * np.where(inside, ratio, 1.0) ** e
        at_zero = np.where(e < 0, np.inf, np.where(e > 0, 0.0, self.base_quantity))
        at_inf = np.where(e < 0, 0.0, np.where(e > 0, np.inf, self.base_quantity))
        limit = np.where(ratio > 0, at_inf, at_zero)
        return np.where(inside, q, np.where(np.isnan(ratio), np.nan, limit))

    def price_for_quantity(self, quantity: Any) -> Any:
        """Inverse demand: the price at which ``quantity`` units sell per week."""
        if _lazy(quantity, self.base_price, self.base_quantity, self.elasticity):
            return self.base_price * (quantity / self.base_quantity) ** (1.0 / self.elasticity)
        return self.base_price * (np.asarray(quantity) / self.base_quantity) ** (
            1.0 / self.elasticity
        )

    def revenue(self, price: Any) -> Any:
        """Weekly revenue at ``price``."""
        return (price if _lazy(price) else np.asarray(price)) * self.quantity(price)

    def profit(self, price: Any, unit_cost: Any) -> Any:
        """Weekly profit ``(price - unit_cost) * q(price)``."""
        p = price if _lazy(price) else np.asarray(price)
        return (p - unit_cost) * self.quantity(p)

    def margin_term(self, price: np.ndarray, unit_cost: Any) -> np.ndarray:
        """``(p - k) q0 (p / p0) ** e`` with its limit at p = inf (0 if e < -1, else inf).

        The Lagrangian term of the optimizer's routes: profit with an effective unit cost
        ``k`` (which may be negative), evaluated in that order so every route agrees to the
        last bit.
        """
        p = np.asarray(price)
        e = self.elasticity
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            val = (p - unit_cost) * self.base_quantity * (p / self.base_price) ** e
        inf = np.isinf(p)
        if np.any(inf):
            lim = np.where(np.asarray(e) < -1, 0.0, np.inf)
            val = np.where(inf, np.broadcast_to(lim, np.shape(val)), val)
        return val

    def optimal_price(self, unit_cost: Any) -> np.ndarray:
        """Unconstrained profit-maximising price c e / (1 + e); inf where e >= -1."""
        e = np.asarray(self.elasticity, dtype=float)
        c = np.broadcast_to(np.asarray(unit_cost, dtype=float), e.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(e < -1, c * e / (1 + e), np.inf)
        return p

    def sql(self, price: str) -> str:
        """The curve as a SQL expression over column names (DuckDB ``pow``)."""
        return f"{self.base_quantity} * pow({price} / {self.base_price}, {self.elasticity})"


@dataclass(frozen=True)
class LinearDemand:
    """q = a - b p + B p (B: cross-price effects, zero diagonal), truncated at zero.

    Profit p'(a - D p) - c'(a - D p) with D = diag(b) - B is a concave quadratic when
    D + D' is positive semidefinite (the QP in optimization.md section 3).
    """

    intercept: np.ndarray
    slope: np.ndarray
    cross: np.ndarray | None = None

    def matrix(self) -> np.ndarray:
        """D such that q = a - D p."""
        d = np.diag(np.asarray(self.slope, dtype=float))
        return d if self.cross is None else d - np.asarray(self.cross, dtype=float)

    def quantity(self, price: np.ndarray) -> np.ndarray:
        """Expected units at ``price`` (not truncated, so it stays linear)."""
        return np.asarray(self.intercept) - self.matrix() @ np.asarray(price)

    def profit(self, price: np.ndarray, unit_cost: np.ndarray) -> float:
        """Total profit over all products."""
        p = np.asarray(price, dtype=float)
        return float((p - unit_cost) @ self.quantity(p))


@dataclass(frozen=True)
class LogitDemand:
    """Multinomial logit: s_j = exp(a_j - b p_j) / (1 + sum_k exp(a_k - b p_k)).

    ``market_size`` customers choose one product or the outside option.
    """

    attraction: np.ndarray
    price_sensitivity: float
    market_size: float = 1.0

    def shares(self, price: np.ndarray) -> np.ndarray:
        """Purchase probability of each product."""
        u = np.asarray(self.attraction) - self.price_sensitivity * np.asarray(price)
        m = max(0.0, float(np.max(u)))
        ex = np.exp(u - m)
        return ex / (np.exp(-m) + ex.sum())

    def price_for_shares(self, shares: np.ndarray) -> np.ndarray:
        """Inverse: p_j = (a_j - log s_j + log s_0) / b."""
        s = np.asarray(shares, dtype=float)
        s0 = 1.0 - s.sum()
        return (np.asarray(self.attraction) - np.log(s) + np.log(s0)) / self.price_sensitivity

    def profit(self, price: np.ndarray, unit_cost: np.ndarray) -> float:
        """Expected total profit."""
        p = np.asarray(price, dtype=float)
        return float(self.market_size * ((p - unit_cost) * self.shares(p)).sum())


@dataclass(frozen=True)
class CrossElasticity:
    """q_i(p) = base_quantity_i * prod_j (p_j / base_price_j) ** matrix[i, j] (per week).

    ``matrix`` (n, n; dense or scipy sparse, stored as CSR) holds the own-price elasticity
    on the diagonal and the cross-price elasticities off it (zero between items that do not
    substitute: other categories or markets). Prices are a vector ``(n,)`` or a batch
    ``(S, n)``.
    """

    base_price: np.ndarray
    base_quantity: np.ndarray
    matrix: Any

    def __post_init__(self) -> None:
        import scipy.sparse as sp

        object.__setattr__(self, "matrix", sp.csr_matrix(self.matrix, dtype=float))

    @property
    def own(self) -> np.ndarray:
        """The own-price elasticities (the diagonal)."""
        return np.asarray(self.matrix.diagonal())

    def _log_q(self, x: np.ndarray) -> np.ndarray:
        xs = np.atleast_2d(x)
        out = np.asarray(self.matrix @ xs.T).T
        return out.reshape(np.shape(x))

    def quantity(self, price: np.ndarray) -> np.ndarray:
        """Expected weekly units of every item at the price vector(s) ``price``."""
        x = np.log(np.asarray(price, dtype=float) / self.base_price)
        return self.base_quantity * np.exp(self._log_q(x))

    def quantity_draws(self, price: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Weekly units at one price vector ``price (n,)`` with the own-price elasticities
        replaced by draws ``own (S, n)`` (cross terms at their estimates): ``(S, n)``."""
        x = np.log(np.asarray(price, dtype=float) / self.base_price)
        cross = self._log_q(x) - self.own * x
        return self.base_quantity * np.exp(cross + np.asarray(own) * x)

    def own_only(self) -> ConstantElasticity:
        """The same items with the cross terms ignored (what single-item pricing assumes)."""
        return ConstantElasticity(self.base_price, self.base_quantity, self.own.copy())

    def siblings_factor(self, price: np.ndarray) -> np.ndarray:
        """``exp(sum_{j != i} e_ij log(p_j / p0_j))``: the factor the other items' prices
        put on each item's units (1 when they are at their base prices)."""
        x = np.log(np.asarray(price, dtype=float) / self.base_price)
        return np.exp(self._log_q(x) - self.own * x)

    def cannibalised(self, price: np.ndarray, own_units: Any = None) -> np.ndarray:
        """Units each item gains (+) or loses (-) from its siblings' price changes alone.

        ``own_units * (siblings_factor(price) - 1)``, ``own_units`` the item's units at its
        own price with its siblings at theirs (default: the curve's own-price units): the
        part of the change that comes from substitution between items.
        """
        if own_units is None:
            x = np.log(np.asarray(price, dtype=float) / self.base_price)
            own_units = self.base_quantity * np.exp(x * self.own)
        return own_units * (self.siblings_factor(price) - 1.0)

    def profit(self, price: np.ndarray, unit_cost: np.ndarray) -> np.ndarray:
        """Weekly profit per item at ``price``."""
        p = np.asarray(price, dtype=float)
        return (p - unit_cost) * self.quantity(p)

    @classmethod
    def from_tables(cls, demand: Any, cross: Any) -> CrossElasticity:
        """Build from a demand table and a cross table (``item_id, market, other_item_id,
        elasticity``; an empty or null market applies the pair in every market).

        The own elasticity comes from ``demand``'s ``elasticity`` column (cross rows with
        ``other_item_id == item_id`` are ignored); pairs whose items are not both rows of
        ``demand`` in that market are left out.
        """
        keys = demand.select(
            pl.col("item_id").cast(pl.String), pl.col("market").cast(pl.String)
        ).with_row_index("_r")
        c = cross.select(
            pl.col("item_id").cast(pl.String),
            pl.col("market").cast(pl.String),
            pl.col("other_item_id").cast(pl.String),
            pl.col("elasticity").cast(pl.Float64),
        ).filter(pl.col("item_id") != pl.col("other_item_id"))
        specific = c.filter(pl.col("market").is_not_null() & (pl.col("market") != ""))
        pooled = c.filter(pl.col("market").is_null() | (pl.col("market") == "")).drop("market")
        pairs = [specific]
        if pooled.height:
            pairs.append(
                pooled.join(keys.select("item_id", "market"), on="item_id").select(specific.columns)
            )
        allp = pl.concat(pairs).unique(["item_id", "market", "other_item_id"], keep="first")
        rows = allp.join(keys, on=["item_id", "market"]).join(
            keys.rename({"item_id": "other_item_id", "_r": "_c"}), on=["other_item_id", "market"]
        )
        import scipy.sparse as sp

        n = demand.height
        r = np.concatenate([rows["_r"].to_numpy(), np.arange(n)])
        k = np.concatenate([rows["_c"].to_numpy(), np.arange(n)])
        own = demand["elasticity"].cast(pl.Float64).to_numpy()
        v = np.concatenate([rows["elasticity"].to_numpy(), own])
        M = sp.csr_matrix((v, (r, k)), shape=(n, n))
        return cls(
            demand["base_price"].cast(pl.Float64).to_numpy(),
            demand["base_quantity"].cast(pl.Float64).to_numpy(),
            M,
        )
