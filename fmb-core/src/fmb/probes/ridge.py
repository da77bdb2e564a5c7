"""Ridge regression with leave-one-out choice of alpha per target, from one decomposition per fit.

The same estimator as scikit-learn's ``RidgeCV(alphas, alpha_per_target=True)`` (``cv=None``:
efficient leave-one-out, squared-error criterion, first alpha of the grid on ties, unpenalised
intercept) applied to standardised features, and checked against it in fmb-core/tests/test_probe.py.
Why not RidgeCV itself: for ``n > p`` its default mode eigendecomposes X'X once but then rebuilds the
p x p inverse and the n x p x p diagonal of the hat matrix for *every* alpha (15 x ~5 GFlop for a
1,600 x 1,024 training fold, 2.9 CPU s); its ``gcv_mode="svd"`` takes a full SVD of X (1.3 CPU s).
Here one eigendecomposition (``X'X`` when ``n > p``, else ``XX'``; 0.4 CPU s) serves the whole alpha
grid and every target, and each alpha costs O(n p).

Formulas (Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*, 2nd ed., eqs. 3.47 and
7.52; Golub, Heath & Wahba 1979): with centred features ``Xc = U S V'`` and centred targets ``yc``,

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


def ridge_loo(
    X: np.ndarray, Y: np.ndarray, X_test: np.ndarray, alphas: np.ndarray = ALPHAS
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ridge on ``X`` (n, p) and ``Y`` (n, t), one alpha per target by leave-one-out error.

    ``X`` and ``X_test`` (m, p) must already be scaled as wanted (``fmb probe`` standardises on the
    training fold). Returns ``(predictions (m, t), chosen alphas (t,))``, float64. Alphas must be
    positive (ValueError otherwise); n must be at least 2.
    """
    from scipy import linalg  # LAPACK syevr through scipy, a kept library

    alphas = np.asarray(alphas, np.float64)
    if alphas.ndim != 1 or not len(alphas) or not np.all(alphas > 0):
        raise ValueError(f"ridge alphas must be a non-empty 1-D array of positive values, got {alphas!r}")
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64).reshape(len(X), -1)
    n, p = X.shape
    if n < 2:
        raise ValueError(f"ridge needs at least 2 objects, got {n}")
    mu, ymu = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mu, Y - ymu
    if n > p:  # X'X = V diag(s^2) V', B = Xc V
        s2, V = linalg.eigh(Xc.T @ Xc)
        B, U = Xc @ V, None
    else:  # XX' = U diag(s^2) U', B = U S
        s2, U = linalg.eigh(Xc @ Xc.T)
        V = None
    s2 = np.clip(s2, 0.0, None)  # rounding can leave tiny negative eigenvalues of a PSD matrix
    if U is not None:
        B = U * np.sqrt(s2)
    r, t, k = len(s2), Y.shape[1], len(alphas)
    inv = 1.0 / (s2[:, None] + alphas[None, :])  # (r, k)
    h = 1.0 / n + (B * B) @ inv  # (n, k): hat diagonal per alpha
    BtY = B.T @ Yc  # (r, t)
    fitted = (B @ (BtY[:, :, None] * inv[:, None, :]).reshape(r, t * k)).reshape(n, t, k)  # centred
    loo = (Yc[:, :, None] - fitted) / (1.0 - h)[:, None, :]
    best = np.argmin(np.mean(loo**2, axis=0), axis=1)  # (t,): the first minimum, as RidgeCV
    if V is not None:
        W = V @ (BtY * inv[:, best])  # (p, t) = V diag(1/(s^2+a)) V' Xc' yc
    else:
        W = Xc.T @ (U @ ((U.T @ Yc) * inv[:, best]))  # Xc' (XX' + a)^-1 yc
    pred = (np.asarray(X_test, np.float64) - mu) @ W + ymu
    return pred, alphas[best]
