"""Analytic power for randomised price tests (with CUPED on the pre-period).

Model of weekly units per unit ``i`` and week ``t`` (after dividing out common
week effects): ``y_it = a_i + e_it`` with between-unit variance ``s2_between``
(of ``a_i``) and within-unit weekly variance ``s2_within`` (of ``e_it``).

* The units effect of a cell is the ratio of mean weekly units per unit in the
  test window, treated over control. Over ``w`` test weeks the per-unit outcome
  has variance ``s2_between + s2_within / w``; CUPED on the mean of ``P``
  pre-period weeks removes ``cov^2 / var_pre`` with ``cov = s2_between`` and
  ``var_pre = s2_between + s2_within / P``. Under a multiplicative effect ``r``
  the delta-method standard error of the ratio is ``r * se0`` with
  ``se0 = sqrt(s2_res / mu^2 * (1/n_t + 1/n_c))``.
* The elasticity (Poisson with unit and week effects on pre + test weeks) is a
  difference in differences: ``a_i`` cancels, so its standard error is
  ``sqrt(s2_within / mu^2 * (1/w + 1/P) / sum_i (x_i - mean x)^2)`` with
  ``x_i = log(1 + pct_i / 100)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pricelab.errors import DataError


@dataclass(frozen=True)
class VarianceComponents:
    """Variance components of weekly units per unit, estimated from history."""

    mu: float  # mean weekly units per unit
    s2_between: float  # variance of unit levels a_i
    s2_within: float  # mean within-unit weekly variance
    n_units: int
    n_weeks: int  # pre-period weeks P

    def residual_variance(self, weeks: int | np.ndarray, cuped: bool = True) -> np.ndarray:
        """Variance of the per-unit test-window mean, after CUPED if ``cuped``."""
        w = np.asarray(weeks, dtype=float)
        var_y = self.s2_between + self.s2_within / w
        if not cuped or self.n_weeks < 1:
            return var_y
        var_x = self.s2_between + self.s2_within / self.n_weeks
        if var_x <= 0:
            return var_y
        return var_y - self.s2_between**2 / var_x

    def to_dict(self) -> dict:
        """Plain-Python view."""
        return {"mu": self.mu, "s2_between": self.s2_between, "s2_within": self.s2_within,
                "n_units": self.n_units, "pre_weeks": self.n_weeks}


def variance_components(quantity: np.ndarray) -> VarianceComponents:
    """Estimate :class:`VarianceComponents` from a (units x weeks) array of weekly units.

    Each week is first rescaled to the overall mean (common week shocks cancel
    between cells); then a one-way ANOVA gives the within-unit variance and the
    between-unit variance of unit levels (method of moments, floored at 0).
    """
    q = np.asarray(quantity, dtype=float)
    n, t = q.shape
    if n < 2 or t < 2:
        raise DataError(
            f"power needs pre-period sales for at least 2 units over 2 weeks (got {n} units, "
            f"{t} weeks)"
        )
    mu = q.mean()
    if mu <= 0:
        raise DataError("power needs pre-period sales: every pre-period quantity is zero")
    week_mean = q.mean(axis=0)
    scale = np.divide(mu, week_mean, out=np.ones(t), where=week_mean > 0)
    y = q * scale
    unit_mean = y.mean(axis=1)
    s2_within = float(((y - unit_mean[:, None]) ** 2).sum() / (n * (t - 1)))
    s2_between = float(max(unit_mean.var(ddof=1) - s2_within / t, 0.0))
    return VarianceComponents(float(mu), s2_between, s2_within, n, t)


def _k(alpha: float, power: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def effect_se(comp: VarianceComponents, weeks, n_treated: int, n_control: int,
              cuped: bool = True) -> np.ndarray:
    """Standard error of the relative units effect (a fraction) under no effect."""
    s2 = comp.residual_variance(weeks, cuped)
    return np.sqrt(s2 / comp.mu**2 * (1.0 / n_treated + 1.0 / n_control))


def power_at(effect: float | np.ndarray, se0, alpha: float = 0.05) -> np.ndarray:
    """Two-sided power to detect a relative units effect ``effect`` (a fraction, e.g. -0.1).

    Parameters
    ----------
    effect:
        True ratio of treated to control mean units, minus one.
    se0:
        Standard error of the ratio under no effect (:func:`effect_se`).
    alpha:
        Two-sided significance level.

    Returns
    -------
    numpy.ndarray
        Probability that the 1 - alpha interval excludes zero.
    """
    r = 1.0 + np.asarray(effect, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    shift = (r - 1.0) / (r * np.asarray(se0, dtype=float))
    return stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)


def mde_pair(se0, alpha: float = 0.05, power: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Minimum detectable decrease and increase (fractions, both >= 0) at ``power``.

    Solves ``|r - 1| / (r * se0) = z_(1-alpha/2) + z_power`` on each side (the
    far tail is neglected). An increase is unreachable (``inf``) when
    ``k * se0 >= 1``.
    """
    k = _k(alpha, power)
    kse = k * np.asarray(se0, dtype=float)
    decrease = kse / (1.0 + kse)
    with np.errstate(divide="ignore"):
        increase = np.where(kse < 1.0, kse / np.maximum(1.0 - kse, 1e-300), np.inf)
    return decrease, increase


def elasticity_se(comp: VarianceComponents, weeks, log_ratios: np.ndarray) -> np.ndarray:
    """Standard error of the elasticity from units with log price ratios ``log_ratios``."""
    x = np.asarray(log_ratios, dtype=float)
    sxx = float(((x - x.mean()) ** 2).sum())
    w = np.asarray(weeks, dtype=float)
    s2d = comp.s2_within / comp.mu**2 * (1.0 / w + 1.0 / comp.n_weeks)
    return np.sqrt(s2d / sxx) if sxx > 0 else np.full_like(w, np.inf)


def weeks_needed(comp: VarianceComponents, n_treated: int, n_control: int, mde: float,
                 *, alpha: float = 0.05, power: float = 0.8, max_weeks: int = 104,
                 cuped: bool = True) -> int | None:
    """Fewest test weeks to detect a units change of ``mde`` (fraction) either way.

    Returns ``None`` when even ``max_weeks`` do not reach ``power`` (with a fixed
    pre-period the CUPED variance has a floor, so some targets are unreachable).
    """
    w = np.arange(1, max_weeks + 1)
    se0 = effect_se(comp, w, n_treated, n_control, cuped)
    ok = np.minimum(power_at(-mde, se0, alpha), power_at(mde, se0, alpha)) >= power
    return int(w[np.argmax(ok)]) if ok.any() else None
