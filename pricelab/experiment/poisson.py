"""Poisson pseudo-maximum likelihood with unit and week fixed effects, clustered by unit.

``E[y_it] = exp(a_i + g_t + x_it' b)``. The unit effects ``a_i`` are concentrated
out exactly: given ``(b, g)``, ``exp(a_i) = n_i / sum_t exp(g_t + x_it' b)`` with
``n_i = sum_t y_it``, which leaves a multinomial logit over weeks per unit. Its
Hessian is the Schur complement of the full Poisson Hessian and its per-unit
scores equal the full model's, so estimates and the cluster-robust covariance of
``(b, g)`` are those of a Poisson GLM with unit and week dummies. The work is
dense numpy on (units x weeks) arrays: a few Newton steps of size K + T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricelab.errors import CheckFailed


@dataclass(frozen=True)
class PoissonFEResult:
    """Slope estimates of a two-way fixed-effects Poisson fit."""

    coef: np.ndarray  # (K,)
    cov: np.ndarray  # (K, K) cluster-robust by unit, with G / (G - 1)
    n_units: int  # units with at least one sale (the others carry no information)
    n_weeks: int
    iterations: int

    @property
    def std_error(self) -> np.ndarray:
        """Cluster-robust standard errors of ``coef``."""
        return np.sqrt(np.diag(self.cov))


def _softmax(eta: np.ndarray) -> np.ndarray:
    e = np.exp(eta - eta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _parts(y, n, x, theta):
    k = x.shape[2]
    g = np.r_[0.0, theta[k:]]
    eta = x @ theta[:k] + g[None, :]
    pi = _softmax(eta)
    ll = float((y * np.log(np.maximum(pi, 1e-300))).sum())
    return pi, ll


def _score_info(y, n, x, pi):
    resid = y - n[:, None] * pi  # (N, T)
    s_b = np.einsum("it,itk->ik", resid, x)  # (N, K)
    s_g = resid[:, 1:]  # (N, T-1)
    scores = np.hstack([s_b, s_g])
    m = np.einsum("it,itk->ik", pi, x)  # (N, K)
    w = n[:, None] * pi  # (N, T)
    i_bb = np.einsum("it,itk,itl->kl", w, x, x) - np.einsum("i,ik,il->kl", n, m, m)
    i_bg = np.einsum("it,itk->kt", w, x) - np.einsum("i,ik,it->kt", n, m, pi)
    i_gg = np.diag(w.sum(axis=0)) - np.einsum("i,is,it->st", n, pi, pi)
    info = np.block([[i_bb, i_bg[:, 1:]], [i_bg[:, 1:].T, i_gg[1:, 1:]]])
    return scores, info


def poisson_fe(
    y: np.ndarray, x: np.ndarray, *, tol: float = 1e-10, max_iter: int = 100
) -> PoissonFEResult:
    """Fit ``E[y_it] = exp(a_i + g_t + x_it' b)`` by Poisson PML.

    Parameters
    ----------
    y : numpy.ndarray
        (units x weeks) non-negative outcomes (zeros allowed).
    x : numpy.ndarray
        (units x weeks) or (units x weeks x K) regressors.
    tol : float
        Convergence tolerance on the Newton step.
    max_iter : int
        Newton iterations before giving up.

    Returns
    -------
    PoissonFEResult
        ``coef`` and cluster-robust (by unit) covariance of the slopes.

    Raises
    ------
    CheckFailed
        Fewer than two units with sales, a regressor without within variation,
        or no convergence.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        x = x[:, :, None]
    n_all = y.sum(axis=1)
    keep = n_all > 0
    y, x = y[keep], x[keep]
    wk = y.sum(axis=0) > 0  # weeks without any sale have g_t = -inf: drop them
    y, x = y[:, wk], x[:, wk]
    n = y.sum(axis=1)
    units, weeks = y.shape
    k = x.shape[2]
    if units < 2 or weeks < 2:
        raise CheckFailed(
            f"elasticity needs sales of >= 2 units in >= 2 weeks (got {units}, {weeks})"
        )
    col = y.sum(axis=0)
    theta = np.r_[np.zeros(k), np.log(col[1:] / col[0])]
    pi, ll = _parts(y, n, x, theta)
    for iteration in range(1, max_iter + 1):
        n_iter = iteration
        scores, info = _score_info(y, n, x, pi)
        try:
            step = np.linalg.solve(info, scores.sum(axis=0))
        except np.linalg.LinAlgError as exc:
            raise CheckFailed(
                "elasticity: price ratio has no variation within units and "
                "weeks (is there a treated cell and a control?)"
            ) from exc
        t = 1.0
        while True:
            new = theta + t * step
            pi_new, ll_new = _parts(y, n, x, new)
            if ll_new >= ll - 1e-12 * abs(ll) or t < 1e-8:
                break
            t /= 2
        theta, pi, ll = new, pi_new, ll_new
        if np.max(np.abs(t * step)) < tol:
            break
    else:
        raise CheckFailed(f"elasticity: Poisson fit did not converge in {max_iter} iterations")
    scores, info = _score_info(y, n, x, pi)
    bread = np.linalg.inv(info)
    meat = scores.T @ scores
    cov = bread @ meat @ bread * (units / (units - 1))
    return PoissonFEResult(theta[:k].copy(), cov[:k, :k].copy(), units, weeks, n_iter)
