"""Ridge regression with leave-one-out choice of alpha per target, from one decomposition per fit.

The same estimator as scikit-learn's ``RidgeCV(alphas, alpha_per_target=True)`` (``cv=None``:
efficient leave-one-out, squared-error criterion, first alpha of the grid on ties, unpenalised
intercept) applied to standardised features, and checked against it in fmb-core/tests/test_probe.py.
Why not RidgeCV itself: for ``n > p`` its default mode eigendecomposes X'X once but then rebuilds the
p x p inverse and the n x p x p diagonal of the hat matrix for *every* alpha (15 x ~5 GFlop for a
1,600 x 1,024 training fold, 2.9 CPU s); its ``gcv_mode="svd"`` takes a full SVD of X (1.3 CPU s).
Here one eigendecomposition (``X'X`` when ``n > p``, else ``XX'``; 0.4 CPU s) serves the whole alpha
grid and every target, and each alpha costs O(n p).

Formulas (Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*, 2nd ed., section 3.4.1
for ridge through the SVD and section 7.10 for the leave-one-out shortcut of a linear smoother;
Golub, Heath & Wahba 1979): with centred features ``Xc = U S V'`` and centred targets ``yc``,

* fitted values ``yhat(a) = mean(y) + U diag(s^2 / (s^2 + a)) U' yc``
* hat diagonal ``h_i(a) = 1/n + sum_j U_ij^2 s_j^2 / (s_j^2 + a)`` (the 1/n is the intercept)
* leave-one-out residual ``e_i(a) = (y_i - yhat_i(a)) / (1 - h_i(a))``; alpha = argmin mean e^2
* coefficients ``w(a) = V diag(1 / (s^2 + a)) V' Xc' yc``

With ``B = Xc V`` (= U S) these need no division by a singular value: ``U diag(s^2/(s^2+a)) U' =
B diag(1/(s^2+a)) B'``, so rank-deficient features (constant or collinear columns, ``p > n``) are
handled without a tolerance.
"""

from __future__ import annotations

import numpy as np

#: the alpha grid of ``fmb probe``'s ridge (as before: scikit-learn RidgeCV(alphas=np.logspace(-3, 4, 15)))
ALPHAS = np.logspace(-3, 4, 15)


#: rows per block in the n > p case: float64 temporaries stay O(BLOCK x p), not O(n x p), at survey scale
BLOCK = 8192


def ridge_loo(
    X: np.ndarray, Y: np.ndarray, X_test: np.ndarray, alphas: np.ndarray = ALPHAS
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ridge on ``X`` (n, p) and ``Y`` (n, t), one alpha per target by leave-one-out error.

    ``X`` and ``X_test`` (m, p) must already be scaled as wanted (``fmb probe`` standardises on the
    training fold); the arithmetic is float64 whatever their dtype. Returns ``(predictions (m, t),
    chosen alphas (t,))``. Alphas must be positive and n at least 2 (ValueError otherwise). Memory:
    beyond ``X``, O(p^2 + BLOCK (p + t k)) floats when n > p, O(n^2 + n p + n t k) otherwise.
    """
    from scipy import linalg  # LAPACK's symmetric eigensolver through scipy, a kept library

    alphas = np.asarray(alphas, np.float64)
    if alphas.ndim != 1 or not len(alphas) or not np.all(alphas > 0):
        raise ValueError(f"ridge alphas must be a non-empty 1-D array of positive values, got {alphas!r}")
    X = np.asarray(X)
    Y = np.asarray(Y, np.float64).reshape(len(X), -1)
    n, p = X.shape
    if n < 2:
        raise ValueError(f"ridge needs at least 2 objects, got {n}")
    t, k = Y.shape[1], len(alphas)
    mu, ymu = X.mean(axis=0, dtype=np.float64), Y.mean(axis=0)
    Yc = Y - ymu
    blocks = [slice(i, min(i + BLOCK, n)) for i in range(0, n, BLOCK)]

    def centred(b: slice) -> np.ndarray:
        return np.asarray(X[b], np.float64) - mu

    if n > p:  # X'X = V diag(s^2) V'; B = Xc V (= U S), built block by block
        G, XtY = np.zeros((p, p)), np.zeros((p, t))
        for b in blocks:
            Xb = centred(b)
            G += Xb.T @ Xb
            XtY += Xb.T @ Yc[b]
        s2, V = linalg.eigh(G)
        s2 = np.clip(s2, 0.0, None)  # rounding can leave tiny negative eigenvalues of a PSD matrix
        BtY = V.T @ XtY  # (p, t)
        inv = 1.0 / (s2[:, None] + alphas[None, :])  # (p, k)
        M = (BtY[:, :, None] * inv[:, None, :]).reshape(p, t * k)
        sq = np.zeros((t, k))
        for b in blocks:
            Bb = centred(b) @ V
            h = 1.0 / n + (Bb * Bb) @ inv  # (rows, k): hat diagonal per alpha
            loo = (Yc[b][:, :, None] - (Bb @ M).reshape(-1, t, k)) / (1.0 - h)[:, None, :]
            sq += np.sum(loo**2, axis=0)
        best = np.argmin(sq, axis=1)  # (t,): the first minimum, as RidgeCV
        W = V @ (BtY * inv[:, best])  # (p, t) = V diag(1/(s^2+a)) V' Xc' yc
    else:  # XX' = U diag(s^2) U' (n <= p, so n x n is the small side)
        Xc = centred(slice(None))
        s2, U = linalg.eigh(Xc @ Xc.T)
        s2 = np.clip(s2, 0.0, None)
        UtY = U.T @ Yc  # (n, t)
        inv = 1.0 / (s2[:, None] + alphas[None, :])  # (n, k)
        h = 1.0 / n + (U * U) @ (s2[:, None] * inv)
        fitted = (U @ (UtY[:, :, None] * (s2[:, None] * inv)[:, None, :]).reshape(n, t * k)).reshape(n, t, k)
        loo = (Yc[:, :, None] - fitted) / (1.0 - h)[:, None, :]
        best = np.argmin(np.sum(loo**2, axis=0), axis=1)
        W = Xc.T @ (U @ (UtY * inv[:, best]))  # Xc' (XX' + a)^-1 yc
    pred = (np.asarray(X_test, np.float64) - mu) @ W + ymu
    return pred, alphas[best]
