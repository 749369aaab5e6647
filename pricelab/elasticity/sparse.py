"""What a sparse series can support: nuisance controls per group, and separation.

Luxury series sell a unit every few weeks. A per-group Poisson fit with an intercept, the
price slope, a promo flag, an annual Fourier pair and a trend has six parameters; on a
series with seven selling weeks it interpolates noise, and what it learnt about trend and
season explodes when it is extrapolated. Two rules, applied identically by the padded
reference path (:func:`pricelab.elasticity.groupfit.fit_poisson`) and the block path
(:func:`pricelab.elasticity.poisson_kernel.poisson_block`), decide per group which of the
*nuisance* controls enter (``promo``, ``sin1/cos1``, ``trend``, ``sin2/cos2``; the
intercept, log price and user-named numeric controls always enter):

1. **Events per parameter.** Blocks are added in the order promo → first Fourier pair →
   trend → second Fourier pair, each only if the group has at least
   ``events_per_param`` (default 10) non-zero weeks per nuisance parameter counted so far
   (the rule of thumb of Peduzzi et al., *J. Clin. Epidemiol.* 49(12), 1996, for count and
   binary outcomes; the informative observations of a sparse count series are its
   non-zero weeks). A block that does not fit is skipped and the next, smaller block is
   tried. A column that is constant in the group is not counted.
2. **Collinearity.** A nuisance column enters only if its variance inflation factor given
   the columns already kept (log price first) is at most :data:`MAX_VIF` = 10 (the usual
   threshold, e.g. Kutner et al., *Applied Linear Statistical Models*, 5th ed., 10.5).
   On less than ~40 weeks of history an annual Fourier pair and a linear trend are nearly
   collinear (VIF of the trend 10.7 at 39 weeks, 37 at 30 weeks), which is how a 40-week
   series got a trend of 28 per year and ``cos1`` of 9.

On a dense series of a year or more (>= 40 selling weeks for the default controls) neither
rule bites, so those groups are fitted exactly as before (statsmodels' GLM on the same
columns). ``events_per_param=0`` switches rule 1 off.

**Separation.** When some combination of regressors is <= 0 on every selling week and
< 0 on some zero weeks (e.g. no sale was ever made on promotion), the Poisson maximum
likelihood estimate does not exist (Santos Silva and Tenreyro, *Economics Letters* 107,
2010): IRLS "converges" in deviance while coefficients run off to infinity and the fitted
means of those zero weeks collapse to 0. :func:`separated` detects the collapse (a zero
week whose fitted mean is below :data:`SEPARATION_MU` times the group's mean weekly
quantity, i.e. a log-mean 14 below the average, which no plausible price or promotion
effect produces). Such a group is refitted once without its collapsed weeks
(:func:`rescued`): when a nuisance control caused it (the control drops out, e.g. the
only promotion week sold nothing) the refit is reported, flagged ``separated``;
otherwise (the price is part of it) the group is ``failed,separated`` with NaN
elasticity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EVENTS_PER_PARAM = 10.0
MAX_VIF = 10.0
SEPARATION_MU = 1e-6
BASE_TOL = 1e-10
#: nuisance blocks in order of priority (internal column names)
NUISANCE = (("_c_promo",), ("_c_sin1", "_c_cos1"), ("_c_trend",), ("_c_sin2", "_c_cos2"))
_NUISANCE_COLS = frozenset(c for block in NUISANCE for c in block)


def events_mask(
    names: Sequence[str],
    n_pos: np.ndarray,
    present: np.ndarray,
    events_per_param: float = EVENTS_PER_PARAM,
) -> np.ndarray:
    """Columns each group's selling weeks can support (rule 1 of the module docstring).

    Parameters
    ----------
    names:
        Column names of the regressors (e.g. ``log_price, _c_promo, _c_sin1, ...``).
    n_pos:
        ``(g,)`` number of weeks with a sale per group.
    present:
        ``(g, len(names))`` columns that vary in the group (constant ones cost nothing).
    events_per_param:
        Selling weeks needed per nuisance parameter; 0 keeps every column.

    Returns
    -------
    numpy.ndarray
        ``(g, len(names))`` booleans: False for nuisance columns left out.
    """
    names = list(names)
    g = n_pos.shape[0]
    allow = np.ones((g, len(names)), dtype=bool)
    if not events_per_param:
        return allow
    used = np.zeros(g)
    for block in NUISANCE:
        idx = [names.index(c) for c in block if c in names]
        if not idx:
            continue
        size = present[:, idx].sum(axis=1)
        ok = n_pos >= events_per_param * (used + size)
        allow[:, idx] = ok[:, None]
        used += np.where(ok, size, 0)
    return allow


def column_tol(names: Sequence[str], max_vif: float = MAX_VIF) -> np.ndarray:
    """Per-column tolerance of the in-order rank check (rule 2): ``1 / max_vif`` for nuisance.

    A column is kept when its Schur complement on the kept earlier columns exceeds
    ``tol * C_jj``, i.e. when ``1 - R²_j > tol``: for nuisance columns that is
    ``VIF_j < max_vif``; other columns keep the numerical-rank tolerance.
    """
    return np.array([1.0 / max_vif if n in _NUISANCE_COLS else BASE_TOL for n in names])


def collapsed(
    y: np.ndarray, mu: np.ndarray, w: np.ndarray, rel: float = SEPARATION_MU
) -> np.ndarray:
    """``(g, T)`` zero weeks whose fitted mean collapsed (the separated observations).

    ``y, mu, w`` are ``(g, T)`` counts, fitted means and row weights (0 = padding).
    """
    n = np.maximum(w.sum(axis=1), 1.0)
    ybar = (y * w).sum(axis=1) / n
    return (w > 0) & (y == 0) & (mu < rel * ybar[:, None])


def separated(
    y: np.ndarray, mu: np.ndarray, w: np.ndarray, rel: float = SEPARATION_MU
) -> np.ndarray:
    """``(g,)`` groups with a collapsed zero week (quasi-separation), see :func:`collapsed`."""
    return np.asarray(collapsed(y, mu, w, rel).any(axis=1), dtype=bool)


def rescued(
    names: Sequence[str], keep: np.ndarray, keep_refit: np.ndarray, good: np.ndarray
) -> np.ndarray:
    """Separated groups whose refit without the collapsed weeks is kept.

    As ppmlhdfe does (Correia, Guimarães and Zylkin, *Stata Journal* 20(1), 2020), the
    separated zero weeks are dropped and the model refitted; a regressor that becomes
    constant drops out. The refit (``good``: converged, not separated again) is kept when
    the separation was a nuisance control's (the column dropped out, e.g. a promotion
    week that never sold); separation through the price itself leaves the group failed.
    ``keep, keep_refit`` are ``(g, len(names))`` kept columns of the two fits.
    """
    nuis = np.array([n in _NUISANCE_COLS for n in names])
    lost = (keep & ~keep_refit & nuis[None, :]).any(axis=1)
    return np.asarray(lost & keep_refit[:, 0] & good, dtype=bool)
