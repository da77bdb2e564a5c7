"""Per-column detectors computed one column at a time, so memory stays O(N) beyond the input.

pyod's ``ECOD`` builds six ``[N, D]`` float64 matrices at once (left and right ECDFs, their argsort
indices, the skew-corrected tail probabilities and their maximum): 1.47 GB peak at 100,000 x 256
(measured), over 14 GB at a million rows. ECOD is a sum over columns of per-column terms (Li et al.
2022, "ECOD: Unsupervised Outlier Detection Using Empirical Cumulative Distribution Functions",
IEEE TKDE, Algorithm 1), so :func:`ecod_scores` computes the same terms column by column and adds
them up: the same per-element values as pyod (its ``column_ecdf`` probabilities ``linspace(1/N, 1, N)``,
ties taking the largest, and the sign of scipy's skewness over the whole column), summed in column
order rather than pyod's pairwise row sum, so scores agree with pyod to ~1e-15 relative
(``tests/test_scaling.py``).

pyod's ``HBOS`` (Goldstein & Dengel 2012) fills an ``[N, D]`` float64 matrix of per-column log
densities before summing each row (2 GB at a million x 256). :func:`hbos_scores` builds the same
histograms (``numpy.histogram`` per column) and runs pyod's own per-element kernel on blocks of
:data:`ROW_BLOCK` rows, summing each block's rows as pyod does: bit-identical scores.
"""

from __future__ import annotations

import warnings

import numpy as np

#: rows per block of :func:`hbos_scores` (bounds its float64 block to ROW_BLOCK x D)
ROW_BLOCK = 65_536
#: columns whose skewness is computed at once (bounds scipy's ``[N, block]`` temporaries)
SKEW_BLOCK = 16


def _tail_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a 1-D column ``x`` of N values: its stable sort order and, in sorted position, how many values
    are ``<= `` (left) and ``>=`` (right) each one."""
    order = np.argsort(x, kind="stable")
    s = x[order]
    le = np.searchsorted(s, s, side="right")  # sorted keys: numpy narrows each search from the last
    ge = len(s) - np.searchsorted(s, s, side="left")
    return order, le, ge


def ecod_scores(X: np.ndarray) -> np.ndarray:
    """ECOD outlier scores (pyod ``ECOD(n_jobs=1).fit(X).decision_scores_``) of the ``[N, D]`` rows of
    ``X``, ``[N]`` float64, higher = more anomalous. Extra memory: a few ``[N]`` arrays and one
    ``[N, SKEW_BLOCK]`` block.

    Per column: U_l = -log ECDF(x) and U_r = -log ECDF(-x) (ECDF(x) = #(x_j <= x) / N, read from
    ``linspace(1/N, 1, N)`` as pyod does), the skew-corrected U_s = U_l if the column's skewness is
    negative, U_r if positive, U_l + U_r if exactly zero (pyod's ``-U_l sign(s - 1) + U_r sign(s + 1)``),
    and the column's term max(U_l, U_r, U_s).
    """
    from scipy.stats import skew

    n, d = X.shape
    probs = np.linspace(1.0 / n, 1.0, n)  # pyod's column_ecdf probabilities (sorted position -> ECDF)
    out = np.zeros(n)
    for a in range(0, d, SKEW_BLOCK):
        b = min(d, a + SKEW_BLOCK)
        with warnings.catch_warnings():  # a constant column: skewness NaN -> 0, as pyod's nan_to_num
            warnings.simplefilter("ignore", RuntimeWarning)
            signs = np.sign(np.nan_to_num(skew(X[:, a:b], axis=0)))
        for j in range(a, b):
            order, le, ge = _tail_counts(np.ascontiguousarray(X[:, j]))
            u_l = -1 * np.log(probs[le - 1])
            u_r = -1 * np.log(probs[ge - 1])
            s = signs[j - a]
            u_s = u_l * -1 * np.sign(s - 1) + u_r * np.sign(s + 1)
            term = np.empty(n)
            term[order] = np.maximum(u_s, np.maximum(u_l, u_r))
            out += term
    return out


def hbos_scores(X: np.ndarray, n_bins: int, alpha: float, tol: float) -> np.ndarray | None:
    """pyod ``HBOS(n_bins, alpha, tol).fit(X).decision_scores_`` (``[N]`` float64) with the ``[N, D]``
    per-element score matrix built :data:`ROW_BLOCK` rows at a time; bit-identical to pyod.

    Uses pyod's per-element kernel ``pyod.models.hbos._calculate_outlier_scores`` (numba) so the
    out-of-range rules (``tol``) stay pyod's; returns None when this pyod has no such kernel (the
    caller then runs pyod's own fit).
    """
    try:
        from pyod.models.hbos import _calculate_outlier_scores
    except ImportError:  # pragma: no cover - a pyod that renamed its kernel
        return None
    n, d = X.shape
    hist = np.zeros([n_bins, d])
    edges = np.zeros([n_bins + 1, d])
    for i in range(d):  # as pyod's HBOS.fit
        hist[:, i], edges[:, i] = np.histogram(X[:, i], bins=n_bins, density=True)
    out = np.empty(n)
    for a in range(0, n, ROW_BLOCK):
        block = np.ascontiguousarray(X[a : a + ROW_BLOCK])
        out[a : a + len(block)] = np.sum(_calculate_outlier_scores(block, edges, hist, n_bins, alpha, tol), axis=1)
    return -1 * out  # pyod's invert_order
