"""Analytic power for randomised price tests (with CUPED on the pre-period).

Model of weekly units per unit ``i`` and week ``t`` (after dividing out common
week effects): ``y_it = a_i + e_it`` with between-unit variance ``s2_between``
(of ``a_i``) and within-unit weekly variance ``s2_within`` (of ``e_it``).

* The units effect of a cell is the ratio of mean weekly units per unit in the
  test window, treated over control. Over ``w`` test weeks the per-unit outcome
  has variance ``s2_between + s2_within / w``; CUPED on the mean of ``P``
  pre-period weeks removes ``cov^2 / var_pre`` with ``cov = s2_between`` and
  ``var_pre = s2_between + s2_within / P``. Under a multiplicative effect ``r``
  the treated level is ``r * a_i`` and :func:`effect_se` propagates it through
  the pooled CUPED coefficient to the delta-method standard error of the ratio.
* The elasticity (Poisson with unit and week effects on pre + test weeks) is a
  difference in differences: ``a_i`` cancels, so its standard error is
  ``sqrt(s2_within / mu^2 * (1/w + 1/P) / sum_i (x_i - mean x)^2)`` with
  ``x_i = log(1 + pct_i / 100)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

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
        return {
            "mu": self.mu,
            "s2_between": self.s2_between,
            "s2_within": self.s2_within,
            "n_units": self.n_units,
            "pre_weeks": self.n_weeks,
        }


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


def effect_se(
    comp: VarianceComponents,
    weeks,
    n_treated: int,
    n_control: int,
    cuped: bool = True,
    effect: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Delta-method standard error of the relative units effect (a fraction).

    Parameters
    ----------
    comp : VarianceComponents
        From :func:`variance_components`.
    weeks : int or array
        Test weeks.
    n_treated, n_control : int
        Randomisation units in the treated cell and the control.
    cuped : bool
        With CUPED on the pre-period mean (pooled coefficient).
    effect : float or array
        True effect ``r - 1``; the treated units' level is ``r * a_i`` and their
        weekly noise variance ``r * poisson + r^2 * extra`` (Poisson part
        ``min(mu, s2_within)``, the rest overdispersion).

    Returns
    -------
    numpy.ndarray
        Standard error of ``mean_t / mean_c - 1``. With the pooled CUPED
        coefficient ``theta = lam * (n_c + r n_t) / N`` (``lam`` the control
        slope) and ``c = theta * (n_c + r n_t) / N``, the numerator
        ``mean_t - r mean_c`` has variance ``(r - c)^2 s2_between (1/n_t + 1/n_c)
        + noise_t / (w n_t) + r^2 s2_within / (w n_c) + c^2 s2_within / P
        (1/n_t + 1/n_c)``; divided by ``mu^2``.
    """
    w = np.asarray(weeks, dtype=float)
    r = 1.0 + np.asarray(effect, dtype=float)
    sa, se, p = comp.s2_between, comp.s2_within, comp.n_weeks
    lam = sa / (sa + se / p) if cuped and p >= 1 and sa + se / p > 0 else 0.0
    nt, nc = float(n_treated), float(n_control)
    share = (nc + r * nt) / (nt + nc)
    c = lam * share**2
    inv = 1.0 / nt + 1.0 / nc
    pois = min(comp.mu, se)
    noise_t = r * pois + r**2 * (se - pois)
    var = (
        (r - c) ** 2 * sa * inv
        + noise_t / (w * nt)
        + r**2 * se / (w * nc)
        + (c**2 * se / p * inv if lam > 0 else 0.0)
    )
    return np.sqrt(var / comp.mu**2)


def power_at(
    comp: VarianceComponents,
    effect: float | np.ndarray,
    weeks,
    n_treated: int,
    n_control: int,
    *,
    alpha: float = 0.05,
    cuped: bool = True,
) -> np.ndarray:
    """Two-sided power to detect a relative units effect ``effect`` (e.g. -0.1 for -10%).

    Parameters
    ----------
    comp : VarianceComponents
        From :func:`variance_components`.
    effect : float or array
        True ratio of treated to control mean units, minus one.
    weeks : int or array
        Test weeks.
    n_treated, n_control : int
        Randomisation units per arm.
    alpha : float
        Two-sided significance level.
    cuped : bool
        With CUPED.

    Returns
    -------
    numpy.ndarray
        Probability that the ``1 - alpha`` Wald interval excludes zero.
    """
    e = np.asarray(effect, dtype=float)
    se1 = effect_se(comp, weeks, n_treated, n_control, cuped, e)
    z = stats.norm.ppf(1 - alpha / 2)
    return stats.norm.cdf(e / se1 - z) + stats.norm.cdf(-e / se1 - z)


def mde_pair(
    comp: VarianceComponents,
    weeks: int,
    n_treated: int,
    n_control: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    cuped: bool = True,
) -> tuple[float, float]:
    """Minimum detectable decrease and increase in units (fractions, both >= 0).

    Finds the smallest change on each side whose :func:`power_at` reaches
    ``power`` (first crossing on a log grid up to a 99.9999% drop or a tenfold
    rise, refined by root finding); ``inf`` when a side never reaches it.
    """

    def curve(e):
        return power_at(comp, e, weeks, n_treated, n_control, alpha=alpha, cuped=cuped) - power

    grid = np.geomspace(1e-6, 1.0, 400)
    out = []
    for sign, top in ((-1.0, 0.999999), (1.0, 9.0)):
        g = grid * top
        ok = curve(sign * g) >= 0
        if not ok.any():
            out.append(float("inf"))
            continue
        i = int(np.argmax(ok))
        if i == 0:
            out.append(float(g[0]))
            continue
        root = optimize.brentq(lambda m, s=sign: float(curve(s * m)), g[i - 1], g[i], xtol=1e-12)
        out.append(float(root))
    return out[0], out[1]


def elasticity_se(comp: VarianceComponents, weeks, log_ratios: np.ndarray) -> np.ndarray:
    """Standard error of the elasticity from units with log price ratios ``log_ratios``."""
    x = np.asarray(log_ratios, dtype=float)
    sxx = float(((x - x.mean()) ** 2).sum())
    w = np.asarray(weeks, dtype=float)
    s2d = comp.s2_within / comp.mu**2 * (1.0 / w + 1.0 / comp.n_weeks)
    return np.sqrt(s2d / sxx) if sxx > 0 else np.full_like(w, np.inf)


def weeks_needed(
    comp: VarianceComponents,
    n_treated: int,
    n_control: int,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    max_weeks: int = 104,
    cuped: bool = True,
) -> int | None:
    """Fewest test weeks to detect a units change of ``mde`` (fraction) either way.

    Returns ``None`` when even ``max_weeks`` do not reach ``power`` (with a fixed
    pre-period the CUPED variance has a floor, so some targets are unreachable).
    """
    w = np.arange(1, max_weeks + 1)
    down = power_at(comp, -mde, w, n_treated, n_control, alpha=alpha, cuped=cuped)
    up = power_at(comp, mde, w, n_treated, n_control, alpha=alpha, cuped=cuped)
    ok = np.minimum(down, up) >= power
    return int(w[np.argmax(ok)]) if ok.any() else None
