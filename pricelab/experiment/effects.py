"""Cell-versus-control effects: ratio of (CUPED-adjusted) means with a delta-method interval.

For units of a treated cell (``d = 1``) and of the control (``d = 0``) with
test-window outcome ``y`` and pre-period covariate ``x`` (both per unit), the
OLS fit ``y = b0 + b1 d + theta (x - mean x)`` gives CUPED-adjusted means
``b0`` (control) and ``b0 + b1`` (treated); ``theta`` is the pooled
within-cell slope. The relative effect is ``b1 / b0`` and its standard error
comes from the delta method on the HC1 covariance (one row per randomisation
unit, so this is the cluster-robust covariance by unit with statsmodels'
small-sample factor ``G / (G - 1) * (N - 1) / (N - K)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RatioEffect:
    """Relative effect (fraction) of a cell against control."""

    effect: float  # treated mean / control mean - 1
    std_error: float
    control_mean: float
    treated_mean: float
    theta: float  # CUPED coefficient (0 without CUPED)

    def interval(self, alpha: float = 0.05) -> tuple[float, float]:
        """Two-sided ``1 - alpha`` Wald interval of the effect."""
        z = stats.norm.ppf(1 - alpha / 2)
        return self.effect - z * self.std_error, self.effect + z * self.std_error

    @property
    def p_value(self) -> float:
        """Two-sided p-value of no effect."""
        if not np.isfinite(self.std_error) or self.std_error <= 0:
            return float("nan")
        return float(2 * stats.norm.sf(abs(self.effect) / self.std_error))


def ols_hc1(y: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and HC1 covariance."""
    n, k = design.shape
    xtx_inv = np.linalg.pinv(design.T @ design)
    beta = xtx_inv @ design.T @ y
    u = y - design @ beta
    meat = (design * u[:, None] ** 2).T @ design
    cov = xtx_inv @ meat @ xtx_inv * (n / (n - k) if n > k else np.nan)
    return beta, cov


def ratio_effect(y: np.ndarray, treated: np.ndarray, x: np.ndarray | None = None) -> RatioEffect:
    """Relative effect of ``treated`` units on mean ``y``, CUPED-adjusted by ``x`` if given.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per unit (e.g. mean weekly units in the test window).
    treated : numpy.ndarray
        Boolean per unit: in the treated cell (else control).
    x : numpy.ndarray, optional
        Pre-period covariate per unit; ``None`` for the plain difference in means.

    Returns
    -------
    RatioEffect
        NaN effect when the control mean is not positive.
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(treated, dtype=float)
    cols = [np.ones_like(y), d]
    use_x = x is not None and np.var(np.asarray(x, dtype=float)) > 0
    if use_x:
        xc = np.asarray(x, dtype=float)
        cols.append(xc - xc.mean())
    beta, cov = ols_hc1(y, np.column_stack(cols))
    b0, b1 = beta[0], beta[1]
    theta = float(beta[2]) if use_x else 0.0
    if b0 <= 0 or d.sum() < 2 or (1 - d).sum() < 2:
        return RatioEffect(float("nan"), float("nan"), float(b0), float(b0 + b1), theta)
    grad = np.zeros(len(beta))
    grad[0], grad[1] = -b1 / b0**2, 1.0 / b0
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    return RatioEffect(float(b1 / b0), se, float(b0), float(b0 + b1), theta)
