"""The pyod detectors FMB exposes (pure data: importing this module imports nothing heavy).

name -> (pyod class path, description, documented parameters with FMB's defaults)
"""

PYOD_DETECTORS: dict[str, tuple[str, str, dict]] = {
    "iforest": ("pyod.models.iforest.IForest", "Isolation forest", {"n_estimators": 300}),
    "lof": ("pyod.models.lof.LOF", "Local outlier factor", {"n_neighbors": 20}),
    "knn": ("pyod.models.knn.KNN", "Distance to the k-th nearest neighbour", {"n_neighbors": 5}),
    "ecod": ("pyod.models.ecod.ECOD", "Empirical-CDF outlier detection", {}),
    "copod": ("pyod.models.copod.COPOD", "Copula-based outlier detection", {}),
    "hbos": ("pyod.models.hbos.HBOS", "Histogram-based outlier score", {"n_bins": 10}),
    "pca": ("pyod.models.pca.PCA", "PCA reconstruction (weighted projection distance)", {}),
    "ocsvm": ("pyod.models.ocsvm.OCSVM", "One-class SVM (RBF kernel)", {}),
    "mcd": ("pyod.models.mcd.MCD", "Minimum covariance determinant (robust Mahalanobis)", {}),
    "gmm": ("pyod.models.gmm.GMM", "Gaussian mixture negative log-likelihood", {"n_components": 1}),
    "kde": ("pyod.models.kde.KDE", "Kernel density estimate", {}),
    "loda": ("pyod.models.loda.LODA", "Lightweight on-line detector of anomalies", {}),
    "inne": ("pyod.models.inne.INNE", "Isolation using nearest-neighbour ensembles", {}),
    "cblof": ("pyod.models.cblof.CBLOF", "Cluster-based local outlier factor", {}),
}
