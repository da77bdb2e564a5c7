"""Neighbour search, one owner: the k-neighbour graphs of knn and lof (exact below a size threshold,
approximate HNSW above) and the blocked exact scans of ``fmb neighbors`` and the review queue.

``fmb neighbors`` asks for the neighbours of one object and the review queue for each candidate's
distance to the few objects labelled so far: few queries (or few base rows), so an exact scan costs
O(queries x base x D), linear in N, and building an index (O(N log N) inserts) could only be slower.
:func:`cosine_to` and :func:`nearest_distance` scan in blocks of :data:`SCAN_BLOCK` rows, so memory
stays bounded at any N (no float64 copy of a million-row matrix).

Exact search costs O(N^2 D) (pyod/scikit-learn brute force or trees, which degrade to brute force
in 100+ dimensions), so a million-object survey is out of reach. Above :data:`ANN_THRESHOLD` rows
the k-neighbour graph comes from a faiss HNSW index (Malkov & Yashunin 2018, "Efficient and robust
approximate nearest neighbor search using Hierarchical Navigable Small World graphs", IEEE TPAMI),
whose build and query cost grows as O(N log N).

Why faiss: measured on this machine (30,000 x 256 embeddings, k = 21, one thread, ``M=12``,
``efConstruction=40``): faiss HNSW 18.9 s (recall@k 0.971), hnswlib 28.4 s (0.966), usearch 35.5 s
(0.965), pynndescent 170 s (0.981, numba compile included), exact brute force 55.7 s. faiss is kept
by Meta, ships wheels for Linux/macOS/Windows, and needs no compiler.

Why these parameters (measured 2026-11-30, 50,000 x 256 low-rank embeddings, k = 20, load average 8-9
on 2 cores, one build thread, two query threads; recall@k on 4,000 seeded rows against exact search):

==========================  =======  =======  ======
index                       build s  query s  recall
==========================  =======  =======  ======
HNSW M=12 efC=40 efS=64      25.5     32.7    0.974
HNSW M=16 efC=24 efS=48      18.1     22.7    0.966   (chosen graph)
HNSW M=12 efC=24 efS=48      13.3     20.5    0.916
HNSW-SQ8 M=12 efC=40 efS=64  47.1     44.6    0.973   (8-bit codes + exact re-rank: no faster)
PCA-64 + HNSW + re-rank x2   13.6     17.0    0.968   (recall depends on the spectrum: 0.45 on
                                                      a 128-d latent, where plain HNSW gets 0.59)
==========================  =======  =======  ======

The first efSearch is small and widened by measurement (below): at 20,000 x 256 and k = 5 (knn's
default), efSearch 12 / 16 / 24 / 48 gave recall 0.967 / 0.973 / 0.980 / 0.994 for 7.2 / 7.6 / 10.8 /
17.8 s of queries, so a fixed wide search would spend more than half of knn's time past the target.

IVF (k-means cells, nprobe of nlist ~ sqrt(N)) costs O(N^1.5) to query and its k-means is
O(N^1.5) to train, so it misses the near-linear growth HNSW gives.

Recall is measured on every fit, not assumed: :func:`hnsw_knn` searches a seeded sample of
:data:`RECALL_SAMPLE` rows exactly (``faiss.knn``, O(sample x N x D), linear in N) and with the
index, and widens ``efSearch`` by 25% at a time (query-only, the graph is kept) until recall@k on the
sample reaches
:data:`RECALL_TARGET` or ``efSearch`` reaches :data:`EF_SEARCH_MAX`. The result (recall, efSearch)
is returned with the graph and written to results.json (``details.neighbours``); a fit that stays
under the target warns in one line. HNSW's recall falls with the data's intrinsic dimension (on
embeddings with a 128-d latent efSearch=256 gives only 0.86), where neighbour distances carry
little information anyway; the recorded figure says how far the graph can be trusted.

Determinism: the index is built with one OpenMP thread (a parallel HNSW insert depends on thread
timing), from rows in the order given (FMB passes canonical ``object_id`` order), with faiss's fixed
level-generator seed, so the same rows give the same graph; the recall sample is chosen by
``seed`` from row positions in that order; queries are independent of each other and run on
:func:`fmb.threads.n_threads` threads, in chunks of :data:`QUERY_CHUNK` rows (bounded memory).
``tests/test_neighbours.py`` checks recall >= 0.95 against exact search on a seeded data set.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from fmb.threads import n_threads

#: at or above this many rows, knn/lof use the HNSW graph (detector parameter ``ann_threshold``).
#: Below it they use pyod's exact search, so small surveys (the default synthetic one, the
#: 39k-object Euclid x DESI set with ``ann_threshold`` raised) keep exact, reproducible-by-hand numbers.
ANN_THRESHOLD = 20_000
#: HNSW graph degree (faiss ``M``), insert beam width (``efConstruction``) and the first search
#: beam width (``efSearch`` = max(this, k + 1), widened by :data:`EF_GROWTH` while the sampled recall
#: is under target);
#: chosen by measurement, see the module docstring
HNSW_M, EF_CONSTRUCTION, EF_SEARCH = 16, 24, 16
#: recall@k the sample check asks for, the largest efSearch it may raise to, and the sample size
RECALL_TARGET, EF_SEARCH_MAX, RECALL_SAMPLE = 0.95, 512, 1000
#: efSearch grows by this factor per step of the check (each step queries only the sample). Doubling
#: overshot: lof at 200,000 x 256 went from 42 (recall just under 0.95) to 84 (0.977); with 25% steps it
#: stops at 68 (0.965). The CPU time did not fall measurably (142.5 s against 134.8 s, under load 18-30):
#: at this size the single-threaded build, not the query, dominates
EF_GROWTH = 1.25
#: rows per index query (bounds the float32 distance / int64 index buffers faiss fills)
QUERY_CHUNK = 65_536


#: rows per block of the exact scans (:func:`cosine_to`, :func:`nearest_distance`)
SCAN_BLOCK = 65_536


def cosine_to(X: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``[N, D]`` ``X`` with the vector ``q`` (``[D]``, finite, non-zero):
    ``[N]`` float64, ``-inf`` for rows that are not finite or are all zero. Computed in float64 over blocks
    of :data:`SCAN_BLOCK` rows."""
    q = np.asarray(q, np.float64)
    qn = np.linalg.norm(q)
    out = np.full(len(X), -np.inf)
    for a in range(0, len(X), SCAN_BLOCK):
        B = np.asarray(X[a : a + SCAN_BLOCK], np.float64)
        ok = np.isfinite(B).all(axis=1)
        norms = np.linalg.norm(np.where(ok[:, None], B, 0.0), axis=1)
        good = ok & (norms > 0)
        out[a : a + len(B)][good] = (B[good] @ q) / (norms[good] * qn)
    return out


def nearest_distance(Q: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``[M, D]`` ``Q`` to its nearest row of ``[L, D]`` ``B`` (L >= 1):
    ``[M]`` float64, exact (the differences themselves, not the dot-product expansion, so a row of ``Q``
    that is also in ``B`` gets exactly 0), in blocks of rows of ``Q`` with at most ~4M float64 temporaries."""
    Q, B = np.asarray(Q, np.float64), np.asarray(B, np.float64)
    if len(B) == 0:
        raise ValueError("nearest_distance needs at least one base row")
    step = max(1, 2**22 // max(1, B.shape[0] * B.shape[1]))
    out = np.empty(len(Q))
    for a in range(0, len(Q), step):
        diff = Q[a : a + step, None, :] - B[None, :, :]
        out[a : a + step] = np.sqrt(np.einsum("mld,mld->ml", diff, diff).min(axis=1))
    return out


def exact_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k-neighbour graph of the rows of ``[N, D]`` ``X``, each row's own index excluded:
    ``([N, k]`` distances ascending, ``[N, k]`` indices). scikit-learn brute force (the reference for tests)."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors()
    return dist, idx


def recall_at_k(approx_dist: np.ndarray, exact_dist: np.ndarray) -> float:
    """Recall@k of approximate neighbour lists against exact ones, both ``[M, k]`` distances ascending:
    the share of approximate neighbours no farther than the exact k-th neighbour (1e-6 relative and 1e-9
    absolute slack for float32 distances), so that ties among equidistant rows (duplicates) are not misses."""
    kth = exact_dist[:, -1:] * (1 + 1e-6) + 1e-9
    return float(np.mean(approx_dist <= kth))


def hnsw_knn(X: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Approximate Euclidean k-neighbour graph (faiss HNSW) of the rows of ``[N, D]`` ``X``, each row's
    own index excluded: ``([N, k]`` distances ascending, float64; ``[N, k]`` int64 indices; a dict of what
    was built: index, M, efConstruction, efSearch used, recall@k on the seeded sample and its size).

    ``seed`` picks the recall sample (positions in the order given). Peak memory beyond ``X``: one float32
    copy of ``X`` inside the index, the graph (``2 M`` int32 per row) and the ``[N, k]`` result.
    Raises ValueError when ``k >= N``; warns (one line) when recall stays under :data:`RECALL_TARGET`.
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
        sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, RECALL_SAMPLE), replace=False))
        exact_d = _exact_sample_distances(X, sample, k)
        ef = min(max(EF_SEARCH, k + 1), EF_SEARCH_MAX)
        while True:
            index.hnsw.efSearch = ef
            d2, i = index.search(X[sample], k + 1)
            recall = recall_at_k(_drop_self(_sqrt(d2), i, k, sample)[0], exact_d)
            if recall >= RECALL_TARGET or ef >= EF_SEARCH_MAX:
                break
            ef = min(math.ceil(EF_GROWTH * ef), EF_SEARCH_MAX)
        dist = np.empty((n, k), np.float64)
        idx = np.empty((n, k), np.int64)
        for a in range(0, n, QUERY_CHUNK):
            b = min(n, a + QUERY_CHUNK)
            d2, i = index.search(X[a:b], k + 1)
            dist[a:b], idx[a:b] = _drop_self(_sqrt(d2), i, k, np.arange(a, b))
    finally:
        faiss.omp_set_num_threads(before)
    info = {
        "index": f"faiss {faiss.__version__} IndexHNSWFlat",
        "M": HNSW_M,
        "efConstruction": EF_CONSTRUCTION,
        "efSearch": ef,
        "recall_at_k": round(recall, 4),
        "recall_sample": len(sample),
    }
    if recall < RECALL_TARGET:
        warnings.warn(
            f"approximate {k}-neighbour graph of {n} rows: recall@k {recall:.3f} on {len(sample)} sampled rows "
            f"is under {RECALL_TARGET} even with efSearch={ef} (high intrinsic dimension); raise ann_threshold "
            "above the row count for exact search",
            stacklevel=2,
        )
    return dist, idx, info


def _exact_sample_distances(X: np.ndarray, sample: np.ndarray, k: int) -> np.ndarray:
    """``[M, k]`` exact distances (ascending) from the rows ``sample`` of float32 ``X`` to their k nearest
    other rows. faiss's brute-force search (BLAS, O(M N D)) finds them; their distances are then taken from
    the differences themselves in float64, like the index's own (the BLAS expansion |x|^2 + |y|^2 - 2 x.y
    loses the small distances of near-duplicates)."""
    import faiss

    d2, i = faiss.knn(X[sample], X, k + 1)
    i = _drop_self(_sqrt(d2), i, k, sample)[1]
    diff = X[i].astype(np.float64) - X[sample].astype(np.float64)[:, None, :]
    return np.sort(np.sqrt(np.einsum("mkd,mkd->mk", diff, diff)), axis=1)


def _sqrt(d2: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(d2, 0.0), dtype=np.float64)


def _drop_self(
    dist: np.ndarray, idx: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """From ``k + 1`` neighbours per query row (``rows``: each query's own row index, default ``0..M-1``),
    remove the row itself (or, where the search did not return it, the farthest one); a missing neighbour
    (-1, fewer than k + 1 found) gets an infinite distance."""
    n = len(idx)
    is_self = idx == (np.arange(n) if rows is None else np.asarray(rows))[:, None]
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
