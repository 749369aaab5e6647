"""Leverage-corrected and week-block clustered variances for the batched kernels (numpy).

Split-half checks on real scanner data (:mod:`pricelab.elasticity.calibration`) showed
the plain sandwich (HC0/HC1) under-covering: promotion weeks with very large Poisson
weights have leverage near 1, so their residuals are small exactly where the fit leans
on them, and weekly demand shocks are serially correlated. ``HC3`` divides each row's
score by ``1 - h_t`` (``h_t`` the diagonal of the weighted hat matrix); ``cluster``
additionally sums the corrected scores within blocks of :data:`CLUSTER_WEEKS` consecutive
weeks of the group and, when the group's weeks span more than a year, also by week of the
year (two-way, :func:`cluster_ss`: events that come back every year), and reports the
larger of that and HC3.
"""

from __future__ import annotations

import numpy as np

#: ``se="cluster"``: scores are summed within blocks of this many consecutive weeks
CLUSTER_WEEKS = 13
#: the shared covariance's second clustering: the same week of the year (52 weeks apart)
YEAR_WEEKS = 52
Z975 = 1.959963984540054  # the normal 0.975 quantile


#: ``t_d(0.975)`` for ``d = 1 .. 51`` degrees of freedom (scipy's ``stdtrit``, to the last
#: bit: ``tests/test_hierarchical_shared.py`` checks it): every level's few-cluster factor in
#: :class:`Shared` (at most 52 clusters) without importing ``scipy.special`` (0.2-0.4 s)
T975 = (
    12.706204736174694,
    4.302652729749462,
    3.1824463052837078,
    2.7764451051977934,
    2.5705818356363146,
    2.4469118511449786,
    2.364624251592784,
    2.306004135204166,
    2.262157162798205,
    2.228138851986274,
    2.200985160091639,
    2.1788128296672284,
    2.1603686564627913,
    2.144786687917804,
    2.131449545559776,
    2.1199052992212546,
    2.1098155778333156,
    2.1009220402410382,
    2.0930240544083087,
    2.085963447265864,
    2.0796138447276795,
    2.0738730679040254,
    2.0686576104190486,
    2.0638985616280245,
    2.0595385527532972,
    2.0555294386428735,
    2.0518305164802846,
    2.0484071417952454,
    2.045229642132703,
    2.0422724563012378,
    2.039513446396408,
    2.0369333434601016,
    2.0345152974493383,
    2.0322445093177186,
    2.030107928250343,
    2.0280940009804502,
    2.0261924630291093,
    2.0243941639119694,
    2.022690920036761,
    2.021075390306273,
    2.019540970441376,
    2.0180817028184443,
    2.016692199227824,
    2.0153675744437636,
    2.014103388880846,
    2.012895598919429,
    2.0117405137297655,
    2.010634757624232,
    2.0095752371292392,
    2.008559112100761,
    2.007583770315836,
)


def t975(dof: np.ndarray) -> np.ndarray:
    """The t distribution's 0.975 quantile for integer ``dof >= 1`` (:data:`T975`, else scipy)."""
    dof = np.asarray(dof, dtype=np.int64)
    if dof.size == 0 or (dof.min() >= 1 and dof.max() <= len(T975)):
        return np.asarray(T975)[dof - 1]
    from scipy.special import stdtrit

    return np.asarray(stdtrit(dof, 0.975), dtype=np.float64)


def normal_quantile(p: float) -> float:
    """The standard normal ``p`` quantile: :data:`Z975` for 0.975 (scipy's ``ndtri`` to
    the last bit), else :class:`statistics.NormalDist` (within 1e-15 of it); importing
    ``scipy.special`` costs a command 0.2-0.4 s of start-up."""
    if p == 0.975:
        return Z975
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def block_codes(week: np.ndarray, w: np.ndarray, size: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Cluster code per row ``(g, T)``: blocks of ``size`` weeks from each group's first week.

    Returns ``(codes, n_codes, clusters)``: rows of weight 0 get code 0 (their scores are
    0), ``clusters (g,)`` counts the non-empty blocks of each group.
    """
    g = week.shape[0]
    week = week.astype(np.int64)
    used = w > 0
    big = np.iinfo(np.int64).max
    first = np.where(used, week, big).min(axis=1, initial=big)
    first = np.where(used.any(axis=1), first, 0)
    cid = np.where(used, (week - first[:, None]) // size, 0).astype(np.int64)
    nc = int(cid.max(initial=0)) + 1
    flat = (np.arange(g)[:, None] * nc + cid).ravel()
    cnt = np.bincount(flat, weights=used.ravel().astype(np.float64), minlength=g * nc)
    return cid, nc, (cnt.reshape(g, nc) > 0).sum(axis=1)


def block_cluster_ss(a: np.ndarray, week: np.ndarray, w: np.ndarray, size: int) -> np.ndarray:
    """Cluster-robust sum of squares of row contributions ``a (g, T)`` in blocks of weeks.

    Rows of weight ``w > 0`` are grouped into clusters of ``size`` consecutive weeks
    (counted from each group's first week, :func:`block_codes`); returns
    ``c/(c-1) sum_c (sum_(t in c) a_t)²`` per group, ``c`` its number of non-empty clusters
    (NaN with fewer than two). ``se="cluster"`` reports the larger of this and the HC3
    variance: with a handful of blocks (a year of weeks is four) the cluster variance is
    noisy and biased down, and HC3 is its floor (measured on synthetic series without
    serial correlation, 50 weeks: 95% coverage 0.84-0.92 with the cluster variance alone,
    0.93-0.96 with the floor).
    """
    g, T = a.shape
    used = w > 0
    if T > 1 and (np.diff(week, axis=1) == 1).all():
        sums, c = _consecutive_blocks(a * used, used, size)
    else:
        cid, nc, c = block_codes(week, w, size)
        flat = (np.arange(g)[:, None] * nc + cid).ravel()
        sums = np.bincount(flat, weights=(a * used).ravel(), minlength=g * nc).reshape(g, nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 1, c / (c - 1.0), np.nan) * (sums**2).sum(axis=1)


def cluster_ss(a: np.ndarray, week: np.ndarray, w: np.ndarray, size: int) -> np.ndarray:
    """``se="cluster"``'s variance per group: :func:`block_cluster_ss`, two-way when the
    group's used weeks span more than :data:`YEAR_WEEKS`.

    The second way sums the contributions by week of the year (weeks 52 apart, counted from
    the group's first used week): a holiday or a seasonal promotion that comes back every
    year leaves errors of the same sign in each year, which blocks of consecutive weeks
    treat as independent. Two-way (Cameron, Gelbach and Miller 2011):
    ``V_block + V_year - V_week``, with ``c/(c-1)`` on each clustered sum and ``V_week``
    the plain sum of squares (the weeks both ways count). Measured on three-year synthetic
    panels with holiday-like yearly shocks (``tests/test_hierarchical_shared.py``): 95%
    coverage of the true Poisson elasticities 0.92 / 0.88 with blocks, 0.95 / 0.91
    two-way; without yearly shocks 0.914 / 0.917 and 0.916 / 0.914.
    """
    return block_cluster_ss(a, week, w, size) + _year_part(a, week, w > 0)


def _year_part(a: np.ndarray, week: np.ndarray, used: np.ndarray) -> np.ndarray:
    """``V_year - V_week`` of the two-way variance per group (0 within one year)."""
    g = a.shape[0]
    out = np.zeros(g)
    if week.size == 0 or int(week.max()) - int(week.min()) < YEAR_WEEKS:
        return out  # no group's weeks span a year (the usual block of one-year series)
    big = np.iinfo(np.int64).max
    wk = week.astype(np.int64)
    first = np.where(used, wk, big).min(axis=1, initial=big)
    last = np.where(used, wk, -1).max(axis=1, initial=-1)
    rows = np.flatnonzero(used.any(axis=1) & (last - first >= YEAR_WEEKS))
    if rows.size == 0:
        return out
    u = used[rows]
    ar = np.where(u, a[rows], 0.0)
    code = np.where(u, (wk[rows] - first[rows, None]) % YEAR_WEEKS, 0)
    flat = (np.arange(rows.size)[:, None] * YEAR_WEEKS + code).ravel()
    n = rows.size * YEAR_WEEKS
    sums = np.bincount(flat, weights=ar.ravel(), minlength=n).reshape(-1, YEAR_WEEKS)
    c = (
        (np.bincount(flat, weights=u.ravel().astype(np.float64), minlength=n) > 0)
        .reshape(-1, YEAR_WEEKS)
        .sum(axis=1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(c > 1, c / (c - 1.0), np.nan)  # NaN: HC3 is kept
    out[rows] = dof * (sums**2).sum(axis=1) - (ar**2).sum(axis=1)
    return out


def _consecutive_blocks(
    a: np.ndarray, used: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Block sums of ``a (g, T)`` (0 on unused rows) and non-empty block counts when each
    row's weeks are consecutive (the usual weekly series): one ``reduceat`` over the
    blocks' row ranges, no codes."""
    g, T = a.shape
    first = np.where(used.any(axis=1), used.argmax(axis=1), 0)
    edges = np.minimum(first[:, None] + size * np.arange(-(-T // size) + 1)[None, :], T)
    lo, hi = edges[:, :-1], edges[:, 1:]
    at = ((np.arange(g) * T)[:, None] + lo).ravel()
    full = hi > lo  # blocks cut off at the end of the series are empty
    # a block's reduceat range runs to the next block's start: past the series' end only
    # rows before the next group's first used week, which are 0 in ``a`` and ``used``;
    # one trailing 0 keeps the last group's empty blocks' starts (g * T) in range
    flat = np.zeros(g * T + 1)
    flat[:-1] = a.ravel()
    sums = np.where(full, np.add.reduceat(flat, at).reshape(lo.shape), 0.0)
    flat[:-1] = used.ravel()
    cnt = np.add.reduceat(flat, at).reshape(lo.shape)
    return sums, (full & (cnt > 0)).sum(axis=1)


def leverage(X: np.ndarray, W: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Diagonal of the weighted hat matrix ``W^1/2 X (X'WX)^-1 X' W^1/2`` per row, ``(g, T)``.

    ``X (g, k, T)``, ``W (g, T)`` and ``inv (g, k, k)``, the inverse of ``X W X'`` on the
    kept columns (zero rows/columns for dropped ones).
    Values are clipped below 1 (a row that alone determines a coefficient has leverage 1).
    """
    h = np.einsum("gkt,gkt->gt", X, np.matmul(inv, X)) * W  # x_t' (C^-1 x_t): no 3-way einsum
    return np.clip(h, 0.0, 1.0 - 1e-8)


def calendar_sums(a: np.ndarray, week: np.ndarray, w: np.ndarray, nw: int) -> np.ndarray:
    """Sums of row contributions ``a (g, T)`` by calendar week ``week (g, T)`` -> ``(g, nw)``.

    Unlike :func:`block_codes` (blocks counted from each group's own first week), the
    weeks here are counted from the first week of the whole data set, the same for every
    group, so the sums of two groups can be multiplied: ``sum_c A_ic A_jc`` over clusters
    ``c`` of weeks is the cluster-robust covariance of the two groups' estimates, what
    shared weekly shocks (a national promotion calendar, the weather, the Super Bowl) leave
    in them (:func:`shared_covariance`). Rows of weight 0 count 0.
    """
    g = a.shape[0]
    b = np.clip(week.astype(np.int64), 0, nw - 1)
    flat = (np.arange(g)[:, None] * nw + b).ravel()
    vals = np.where((w > 0) & np.isfinite(a), a, 0.0).ravel()
    return np.bincount(flat, weights=vals, minlength=g * nw).reshape(g, nw)


def _clusters(nw: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Indicator columns of the two-way clustering of ``nw`` calendar weeks, and signs.

    Returns ``(M (nw, m), sign (m,), nb)``: blocks of :data:`CLUSTER_WEEKS` weeks (the
    first ``nb`` columns, sign +1); with more than a year of weeks also the weeks of the
    year (week mod :data:`YEAR_WEEKS`, +1) and the single weeks, their intersections (-1):
    ``V = V_block + V_year - V_week`` (Cameron, Gelbach and Miller 2011). Within one year
    the week-of-year clusters are single weeks and only the blocks remain.
    """
    wk = np.arange(nw)
    nb = (nw - 1) // CLUSTER_WEEKS + 1
    cols = [np.eye(nb)[wk // CLUSTER_WEEKS]]
    sign = [np.ones(nb)]
    if nw > YEAR_WEEKS:
        cols += [np.eye(YEAR_WEEKS)[wk % YEAR_WEEKS], np.eye(nw)]
        sign += [np.ones(YEAR_WEEKS), -np.ones(nw)]
    return np.hstack(cols), np.concatenate(sign), nb


def shared_covariance(
    a: np.ndarray, v: np.ndarray, lvl: np.ndarray, L: int, t2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(X (L, K), Y (n, K))`` of :class:`Shared` (see there), ``Y`` for every grid point."""
    sh = Shared(a, v, lvl, L, t2)
    return sh.cross_mu, np.stack([sh.column(k) for k in range(t2.shape[1])], axis=1)


class Shared:
    """Cross-group covariance terms of a pooled level mean, on a ``tau`` grid ``t2 (L, K)``.

    ``a (n, nw)`` are the estimates' weekly :func:`calendar_sums`, ``v (n,)`` their
    variances and ``lvl`` their level codes. With ``w_j = 1 / (v_j + tau²)``,
    ``omega_j = w_j / sum w`` (the weights of the level mean ``mu_hat``) and ``c_ij`` the
    covariance of two groups' sampling errors, returns per grid point

    * ``X = sum_(i != k) omega_i omega_k c_ik`` per level, what shared shocks add to the
      variance ``1 / sum w`` of ``mu_hat``, and
    * ``Y_j = sum_(i != j) omega_i c_ij`` per group, the covariance of its error with the
      other groups' part of ``mu_hat``.

    The posterior error of a shrunk group, ``B_j eps_j + (1 - B_j)(mu_hat - theta_j)``,
    then has variance ``B_j v_j + (1 - B_j)² (1 / sum w + X) + 2 B_j (1 - B_j) Y_j``
    (with independent errors ``X = Y = 0``: the usual ``Var[theta_j | tau]``).

    ``c_ij = f sum_c s_c A_ic A_jc`` is two-way cluster-robust (:func:`_clusters`): the
    weekly sums are summed in blocks of :data:`CLUSTER_WEEKS` calendar weeks (shocks that
    last a few weeks) and, with more than a year of data, also by week of the year
    (events that come back at the same week every year: the Super Bowl, Thanksgiving, a
    seasonal promotion the Fourier terms do not follow), minus the single weeks that both
    count. Measured on the 45 avocado regions (three years): three of the four Super Bowl
    weeks fall in the odd weeks, and with blocks alone the odd/even split-half RMS z of
    the hierarchical model is 1.21 (odd and even pooled means 1.5 standard errors apart),
    1.11 with the week-of-year clusters (1.08 with the groups' own variances two-way too).

    ``f`` is the few-cluster correction of the level, with ``c`` its non-empty calendar
    blocks (or week-of-year clusters, if fewer): ``c/(c-1)`` (as for a group's own
    cluster variance) times ``(t_(c-1)(0.975) / 1.96)²``, the usual rule of reading a
    cluster-robust statistic from ``c`` clusters against a t distribution with ``c - 1``
    degrees of freedom (Cameron and Miller 2015), folded into the variance so that normal
    intervals (and draws) downstream have the t interval's width: 1.24 for 13 blocks
    (three years), 2.6 for 4 (one year). On synthetic panels with a national price level
    and national demand shocks (``tests/test_hierarchical_shared.py``: 30 levels of 30
    series, two years) the 95% intervals cover 0.89-0.90 of the true elasticities,
    0.65-0.67 with independent errors; without the t factor 0.81-0.90 (one to three
    years). One pass per grid point, vectorised over groups and levels; the per-group work
    is on the weekly sums, the clusters are formed from the level sums. ``X`` is computed
    at once (``cross_mu``); ``Y`` one grid point at a time (:meth:`column`, ``n`` values:
    an ``(n, K)`` array of them was a tenth of ``estimate --model hierarchical``'s peak
    memory). ``rows`` picks the estimates' rows of ``a`` (no copy of the weekly sums).
    """

    def __init__(
        self,
        a: np.ndarray,
        v: np.ndarray,
        lvl: np.ndarray,
        L: int,
        t2: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> None:
        self.cross_mu, self.back, self.f, self.a, self.ss, self.sw = _shared(a, v, lvl, L, t2, rows)
        self.order = np.argsort(lvl, kind="stable")
        self.lv, self.v, self.t2 = lvl[self.order], v[self.order], t2

    def column(self, k: int) -> np.ndarray:
        """``Y_j`` at grid point ``k`` for every estimate (in the estimates' order)."""
        lv = self.lv
        om = 1.0 / (self.v + self.t2[lv, k]) / self.sw[lv, k]
        n, nw = self.a.shape
        aA = np.empty(n)
        step = max(1, int(2e6 // max(nw, 1)))
        for i in range(0, n, step):
            s = slice(i, i + step)
            aA[s] = np.einsum("nw,nw->n", self.a[s], self.back[lv[s], k])
        out = np.empty(n)
        out[self.order] = self.f[lv] * (aA - om * self.ss)
        return out


def _shared(
    a: np.ndarray,
    v: np.ndarray,
    lvl: np.ndarray,
    L: int,
    t2: np.ndarray,
    rows: np.ndarray | None,
) -> tuple[np.ndarray, ...]:
    """:class:`Shared`'s level sums: ``cross_mu (L, K)``, ``back (L, K, nw')`` (per week,
    or per block within a year: ``sum_c s_c A_c M_wc``), ``f (L,)``, the weekly sums in
    level order ``(n, nw')``, their own squares ``ss`` and ``sum w (L, K)``."""
    n, K = v.size, t2.shape[1]
    nw = a.shape[1]
    M, sign, nb = _clusters(nw)
    order = np.argsort(lvl, kind="stable")  # levels as contiguous segments (all present)
    at = order if rows is None else rows[order]
    chunk = max(1, int(2e6 // max(nw, 1)))
    if nw <= YEAR_WEEKS:  # within a year only the blocks remain: work on their sums
        a = np.concatenate([a[at[i : i + chunk]] @ M for i in range(0, n, chunk)] or [a[:, :nb]])
        M, sign, nw = np.eye(nb), np.ones(nb), nb
    else:
        a = a[at].astype(np.float64)
    lv, v = lvl[order], v[order]
    starts = np.flatnonzero(np.r_[True, lv[1:] != lv[:-1]])
    ss = np.concatenate(
        [((a[i : i + chunk] @ M) ** 2) @ sign for i in range(0, n, chunk)] or [np.zeros(0)]
    )
    used = (np.add.reduceat(np.abs(a), starts, axis=0) > 0).astype(np.float64) @ M > 0
    clusters = used[:, :nb].sum(axis=1)
    if nw > YEAR_WEEKS:
        clusters = np.minimum(clusters, used[:, nb : nb + YEAR_WEEKS].sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(clusters > 1, clusters / (clusters - 1.0), 0.0)
        few = np.where(clusters > 1, (t975(np.maximum(clusters - 1, 1)) / Z975) ** 2, 0.0)
    f = np.zeros(L)
    f[lv[starts]] = dof * few
    cross_mu = np.zeros((L, K))
    sw = np.zeros((L, K))
    back = np.zeros((L, K, nw))
    step = max(1, int(2e6 // max(n * nw, 1)))  # grid points per pass (bounded memory)
    for k0 in range(0, K, step):
        t = t2[lv, k0 : k0 + step]  # (n, kc)
        w = 1.0 / (v[:, None] + t)
        sums = np.add.reduceat(w, starts, axis=0)
        om = w / sums[lv]
        A = np.add.reduceat(om[:, :, None] * a[:, None, :], starts, axis=0) @ M  # (L, kc, m)
        own = np.add.reduceat(om * om * ss[:, None], starts, axis=0)
        ls = lv[starts]
        cross_mu[ls, k0 : k0 + step] = f[ls, None] * ((A * A) @ sign - own)
        back[ls, k0 : k0 + step] = (A * sign) @ M.T  # (L, kc, nw): sum_c s_c A_c M_wc per week
        sw[ls, k0 : k0 + step] = sums
    return cross_mu, back, f, a, ss, sw
