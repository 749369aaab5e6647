"""Demand curves: constant elasticity, linear, multinomial logit.

Each curve is vectorised over rows (numpy arrays broadcast against prices) and
gives quantity, revenue and profit; the constant-elasticity curve also gives its
unconstrained profit-maximising price p* = c e / (1 + e).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConstantElasticity:
    """q(p) = base_quantity * (p / base_price) ** elasticity (per week)."""

    base_price: np.ndarray
    base_quantity: np.ndarray
    elasticity: np.ndarray

    def quantity(self, price: np.ndarray) -> np.ndarray:
        """Expected weekly units at ``price``."""
        return self.base_quantity * (np.asarray(price) / self.base_price) ** self.elasticity

    def price_for_quantity(self, quantity: np.ndarray) -> np.ndarray:
        """Inverse demand: the price at which ``quantity`` units sell per week."""
        return self.base_price * (np.asarray(quantity) / self.base_quantity) ** (
            1.0 / self.elasticity
        )

    def revenue(self, price: np.ndarray) -> np.ndarray:
        """Weekly revenue at ``price``."""
        return np.asarray(price) * self.quantity(price)

    def profit(self, price: np.ndarray, unit_cost: np.ndarray) -> np.ndarray:
        """Weekly profit at ``price`` with ``unit_cost`` per unit."""
        return (np.asarray(price) - unit_cost) * self.quantity(price)

    def optimal_price(self, unit_cost: np.ndarray) -> np.ndarray:
        """Unconstrained profit-maximising price c e / (1 + e); inf where e >= -1."""
        e = np.asarray(self.elasticity, dtype=float)
        c = np.broadcast_to(np.asarray(unit_cost, dtype=float), e.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(e < -1, c * e / (1 + e), np.inf)
        return p


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
