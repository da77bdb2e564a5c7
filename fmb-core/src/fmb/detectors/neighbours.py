"""k-nearest-neighbour graphs for knn and lof: exact below a size threshold, approximate (HNSW) above.

Exact search costs O(N^2 D) (pyod/scikit-learn brute force or trees, which degrade to brute force
in 100+ dimensions), so a million-object survey is out of reach. Above :data:`ANN_THRESHOLD` rows
the k-neighbour graph comes from a faiss HNSW index (Malkov & Yashunin 2018, "Efficient and robust
approximate nearest neighbor search using Hierarchical Navigable Small World graphs", IEEE TPAMI),
whose build and query cost grows as O(N log N).

Why faiss: measured on this machine (30,000 x 256 embeddings, k = 21, one thread, ``M=12``,
``efConstruction=40``): faiss HNSW 18.9 s (recall@k 0.971), hnswlib 28.4 s (0.966), usearch 35.5 s
(0.965), pynndescent 170 s (0.981, numba compile included), exact brute force 55.7 s. faiss is kept
by Meta, ships wheels for Linux/macOS/Windows, and needs no compiler.

Determinism: the index is built with one OpenMP thread (a parallel HNSW insert depends on thread
timing), from rows in the order given (FMB passes canonical ``object_id`` order), with faiss's fixed
level-generator seed, so the same rows give the same graph; queries are independent of each other
and run on :func:`fmb.threads.n_threads` threads. The build parameters below give recall@k >= 0.95
against exact search (``tests/test_neighbours.py`` checks it on a seeded data set).
"""

from __future__ import annotations

import numpy as np

from fmb.threads import n_threads

#: at or above this many rows, knn/lof use the HNSW graph (detector parameter ``ann_threshold``).
#: Below it they use pyod's exact search, so small surveys (the default synthetic one, the
#: 39k-object Euclid x DESI set with ``ann_threshold`` raised) keep exact, reproducible-by-hand numbers.
ANN_THRESHOLD = 20_000
#: HNSW graph degree (faiss ``M``), insert beam width (``efConstruction``) and the least search
#: beam width (``efSearch`` = max(this, 2k)); chosen by measurement, see the module docstring
HNSW_M, EF_CONSTRUCTION, EF_SEARCH = 12, 40, 64


def exact_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k-neighbour graph of the rows of ``[N, D]`` ``X``, each row's own index excluded:
    ``([N, k]`` distances ascending, ``[N, k]`` indices). scikit-learn brute force (the reference for tests)."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors()
    return dist, idx


def hnsw_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate Euclidean k-neighbour graph (faiss HNSW) of the rows of ``[N, D]`` ``X``, each row's
    own index excluded: ``([N, k]`` distances ascending, float64; ``[N, k]`` int64 indices).

    Raises ValueError when ``k >= N``.
    """
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of rows ({n})")
    index = faiss.IndexHNSWFlat(d, HNSW_M)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)  # deterministic insert order (see the module docstring)
        index.add(X)
        faiss.omp_set_num_threads(n_threads())
        index.hnsw.efSearch = max(EF_SEARCH, 2 * (k + 1))
        dist2, idx = index.search(X, k + 1)
    finally:
        faiss.omp_set_num_threads(before)
    return _drop_self(np.sqrt(np.maximum(dist2, 0.0), dtype=np.float64), idx.astype(np.int64), k)


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From ``k + 1`` neighbours per row, remove the row itself (or, where the search did not return it,
    the farthest one); a missing neighbour (-1, fewer than k + 1 found) gets an infinite distance."""
    n = len(idx)
    is_self = idx == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(is_self)
    keep[np.arange(n), drop] = False
    dist = dist[keep].reshape(n, k)
    idx = idx[keep].reshape(n, k)
    dist[idx < 0] = np.inf
    return dist, idx


def knn_scores(dist: np.ndarray, method: str = "largest") -> np.ndarray:
    """pyod KNN's score from a k-neighbour graph: the distance to the k-th neighbour (``largest``),
    or the mean or median of the k distances (Ramaswamy et al. 2000; Angiulli & Pizzuti 2002)."""
    if method == "largest":
        return dist[:, -1].astype(np.float64)
    if method == "mean":
        return dist.mean(axis=1)
    if method == "median":
        return np.median(dist, axis=1)
    raise ValueError(f"method must be largest, mean or median, got {method!r}")


def lof_scores(dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Local outlier factor (Breunig et al. 2000, SIGMOD, Def. 5-7) from a k-neighbour graph
    (``[N, k]`` distances ascending and indices), as scikit-learn computes it (pyod's ``lof``):
    reach-dist(p, o) = max(k-distance(o), d(p, o)); lrd(p) = 1 / (mean_o reach-dist(p, o) + 1e-10);
    LOF(p) = mean_o lrd(o) / lrd(p)."""
    kdist = dist[:, -1]
    reach = np.maximum(kdist[idx], dist)
    lrd = 1.0 / (reach.mean(axis=1) + 1e-10)
    return (lrd[idx] / lrd[:, None]).mean(axis=1)
