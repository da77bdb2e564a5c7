"""Neighbour search, one owner: the k-neighbour graphs of knn and lof (exact below a size threshold,
approximate NN-descent above) and the blocked exact scans of ``fmb neighbors`` and the review queue.

``fmb neighbors`` asks for the neighbours of one object and the review queue for each candidate's
distance to the few objects labelled so far: few queries (or few base rows), so an exact scan costs
O(queries x base x D), linear in N, and building an index could only be slower.
:func:`cosine_to` and :func:`nearest_distance` scan in blocks of :data:`SCAN_BLOCK` rows, so memory
stays bounded at any N (no float64 copy of a million-row matrix).

Exact search costs O(N^2 D) (pyod/scikit-learn brute force or trees, which degrade to brute force
in 100+ dimensions), so a million-object survey is out of reach. Above :data:`ANN_THRESHOLD` rows
the k-neighbour graph comes from NN-descent (Dong, Charikar & Li 2011, "Efficient k-nearest neighbor
graph construction for generic similarity measures", WWW), as faiss implements it
(``faiss.NNDescent`` over an ``IndexFlatL2``; faiss is kept by Meta and ships wheels for Linux/macOS/Windows).
NN-descent builds the all-points k-neighbour graph itself ("a neighbour of a neighbour is likely a
neighbour", a local join per row and iteration), which is exactly what knn and lof need; an HNSW
index must be built (N inserts) and then searched N times.

Why NN-descent and not the faiss HNSW index used before (measured 2026-11-30 on this 2-core machine,
bench/bench_scale.py's data: 256-d, a 16-d latent through tanh plus noise, standardised; CPU seconds of
one thread, the machine shared at load 5-7): HNSW (M=16, efConstruction=24) grew as N^1.37 (knn) and
N^1.52 (lof) in CPU time, because its single-threaded build pays log N hops of cache-missing 1 KB
vectors per insert and the efSearch that keeps recall@k at 0.95 grows with N (k=5: 20 at 100,000 rows,
see docs/detection.md for 1,000,000). NN-descent grew as N^1.06 from 30,000 (11.4 s, recall@5 0.998) to
100,000 rows (40.9 s, 0.995, pool K+30); the whole knn fit took 29.1 CPU s at 100,000 rows and 549.7 CPU s
at 1,000,000 (11 iterations, recall@5 0.976, 4.75 GB peak): N^1.28, against HNSW's N^1.37 (see
docs/detection.md: the goal of N^1.2 is not yet met).
Parameters (k=5, 30,000 rows; CPU s, recall): iter 8 / L=K+10 / S=10 7.5 s, 0.994 (chosen); L=K+2
5.6 s, 0.960; S=6 5.8 s, 0.873; iter 6 / L=K+20 24.0 s at 100,000 rows, 0.883 (too few iterations).
k=20 (lof): K=20, L=30 8.9 s, 0.991. HNSW's recall on i.i.d. Gaussian 256-d rows (intrinsic
dimension 256, the worst case for any graph method) is in docs/detection.md.

Where a fit's time goes (lof, k=20, 100,000 rows, CPU s): the build 31-36 s, the exact recall sample ~1 s,
ordering and copies < 0.5 s, the lof step 0.04 s. The build's superlinear part is random memory access: an
early iteration (random graph) costs 1.47x more per row at 1,000,000 rows than at 100,000 (its rows, pools and
locks outgrow the L3 cache). So the rows are stored once, in faiss's storage, grouped by k-means cell
(:func:`cell_order`: the late, local iterations then read neighbouring memory; 35.2 -> 28.1 s at 100,000 rows,
a random-projection-tree order gave nothing), with huge pages asked for (:func:`huge_pages`: 129.7 -> 110.9 s at
300,000 rows), and NN-descent runs 2 more iterations per tenfold rows instead of 3. faiss IVF-Flat (cells of
1,000 rows) needed nprobe 16 for recall@20 0.93 (~125 s at 100,000 rows): slower. Figures in docs/detection.md.

Recall is measured on every fit, not assumed: :func:`ann_knn` finds the neighbours of a seeded sample of
:data:`RECALL_SAMPLE` rows exactly (``faiss.knn``, O(sample x N x D), linear in N) and compares the
graph's; under :data:`RECALL_TARGET` it rebuilds once with :data:`RETRY_EXTRA_ITERATIONS` more
iterations and a pool twice as wide (the budget: a fit costs at most about three first builds), and warns in one line
if the recall is still short. The result (recall, parameters, whether it rebuilt) is returned with the
graph and written to results.json (``details.neighbours``).

Determinism and row order: NN-descent's random start and sampling come from faiss's seeded mt19937
(``random_seed``, derived from the run's seed) and the graph is built with one OpenMP thread (the
parallel local join depends on thread timing). Its ids are positions, so the rows are first put in a
content-defined order (by their projection on a fixed random direction, :func:`content_order`) and then
grouped by seeded k-means cell (:func:`cell_order`, :func:`memory_order`): the same set of rows gives the
same graph and the same scores whatever order they arrive in (exact duplicate rows excepted: their
relative order is the input's). The recall sample is chosen by position in that order.
``tests/test_neighbours.py`` and ``tests/test_scaling.py`` check recall against exact search, determinism
and row-order invariance.
"""

from __future__ import annotations

import ctypes
import math
import sys
import warnings
from typing import Any

import numpy as np

from fmb.threads import n_threads

#: at or above this many rows, knn/lof use the approximate graph (detector parameter ``ann_threshold``).
#: Below it they use pyod's exact search, so small surveys (the default synthetic one, the
#: 39k-object Euclid x DESI set with ``ann_threshold`` raised) keep exact, reproducible-by-hand numbers.
ANN_THRESHOLD = 20_000
#: below this many rows :func:`ann_knn` searches exactly even when asked for the approximate graph
#: (``ann_threshold=0``): exact search costs nothing there and faiss's NN-descent refuses 100 rows or fewer
EXACT_BELOW = 2_000
#: NN-descent's graph degree is K = max(k, K_MIN): with fewer slots per row the local joins find too few
#: candidates and the graph converges slowly (measured, see the module docstring)
K_MIN = 10
#: NN-descent parameters (faiss names): iterations up to 100,000 rows, candidate pool L = K + POOL_EXTRA, new
#: neighbours sampled per join S, reverse neighbours kept R (faiss's default); chosen by measurement, see the
#: module docstring
ITERATIONS, POOL_EXTRA, SAMPLE_S, REVERSE_R = 8, 10, 10, 100
#: extra iterations per tenfold rows above 100,000 (:func:`nn_descent_iterations`): NN-descent starts from a
#: random graph whose recall (about K / N) grows a few-fold per iteration until it converges, so the
#: iterations it needs grow with log N. Measured at 100,000 rows (k=5, faiss's 100-row estimate of recall@10
#: per iteration): 0.34 / 0.69 / 0.91 / 0.97 / 0.98 after 4 / 5 / 6 / 7 / 8 iterations; at 1,000,000 rows
#: 0.22 / 0.51 / 0.78 / 0.92 / 0.96 after 5 / 6 / 7 / 8 / 9 (0.964 after 11), about 1.5 iterations later per
#: tenfold; with 8 iterations a 1,000,000-row fit ran past 834 CPU s (a rebuild, most likely), with 11 the
#: graph took 481 CPU s and reached recall@5 0.974. Two per tenfold (10 at 1,000,000 rows, faiss's estimate 0.962
#: there, 0.956 after 9) rather than three: the eleventh iteration added 0.002 for a tenth of the build's time
ITERATIONS_PER_DECADE = 2
#: the one rebuild when the first graph's recall is under target: this many more iterations and a wider pool
RETRY_EXTRA_ITERATIONS, RETRY_POOL_EXTRA = 4, 20
#: recall@k the sample check asks for, and the sample size
RECALL_TARGET, RECALL_SAMPLE = 0.95, 1000
#: rows per block of the graph's distance computation (bounds the [rows, K] buffers)
QUERY_CHUNK = 65_536
#: memory order of the rows (:func:`cell_order`): k-means cells of about CELL_ROWS rows (500 rows x 1 KB of
#: 256-d float32 fit the 1 MB L2 cache) inside at most COARSE_CELLS first-level cells, each level trained on
#: up to CELL_TRAIN rows per centroid for CELL_ITERATIONS Lloyd iterations (measured, see the module docstring)
CELL_ROWS, COARSE_CELLS, CELL_TRAIN, CELL_ITERATIONS = 500, 64, 64, 10


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


def content_order(X: np.ndarray) -> np.ndarray:
    """A row order of ``[N, D]`` ``X`` defined by the rows' content: ascending projection on a fixed,
    seeded random direction (float64 sums), ties (identical rows, in practice) kept in input order. The same
    set of rows in any order gives the same sequence of rows."""
    r = np.random.default_rng(20_111).standard_normal(X.shape[1])  # fixed: part of the method, not of a run
    key = np.empty(len(X))
    for a in range(0, len(X), SCAN_BLOCK):
        key[a : a + SCAN_BLOCK] = np.asarray(X[a : a + SCAN_BLOCK], np.float64) @ r
    return np.argsort(key, kind="stable")


def cell_order(Xs: np.ndarray, seed: int = 20_111) -> np.ndarray:
    """A row order of float32 ``[N, D]`` ``Xs`` that puts near rows next to each other in memory: rows grouped
    by k-means cell of about :data:`CELL_ROWS` rows, found in two levels (at most :data:`COARSE_CELLS` cells,
    then each split into cells of about :data:`CELL_ROWS` rows, so the cost stays O(N D (COARSE_CELLS +
    N / (COARSE_CELLS CELL_ROWS))) instead of O(N^2 D / CELL_ROWS) for one flat k-means), each cell's rows in
    their order in ``Xs``. faiss k-means (seeded; training rows chosen by position in ``Xs``), so the order is
    a function of ``Xs`` alone: pass rows in :func:`content_order` and it is a function of their content.
    Run it with one BLAS/OpenMP thread for results that do not depend on the thread count."""
    n = len(Xs)
    key = np.zeros(n, np.int64)
    top = _kmeans_cells(Xs, min(COARSE_CELLS, n // CELL_ROWS), seed)
    for c in np.unique(top):
        rows = np.flatnonzero(top == c)  # ascending: positions in Xs
        sub = _kmeans_cells(Xs[rows], len(rows) // CELL_ROWS, seed + 1 + int(c))
        key[rows] = int(c) * (n + 1) + sub
    return np.argsort(key, kind="stable")


def _kmeans_cells(X: np.ndarray, cells: int, seed: int) -> np.ndarray:
    """Nearest of ``cells`` seeded faiss k-means centroids for each row of ``X`` (``[N]`` int64; all 0 when
    ``cells`` < 2)."""
    import faiss

    if cells < 2:
        return np.zeros(len(X), np.int64)
    km = faiss.Kmeans(
        X.shape[1], cells, niter=CELL_ITERATIONS, seed=seed, max_points_per_centroid=CELL_TRAIN, verbose=False
    )
    km.train(X)
    return km.index.search(X, 1)[1][:, 0].astype(np.int64)


def nn_descent_iterations(n: int) -> int:
    """NN-descent iterations for ``n`` rows: :data:`ITERATIONS` up to 100,000 rows, plus
    :data:`ITERATIONS_PER_DECADE` per tenfold above (rounded up)."""
    return ITERATIONS + max(0, math.ceil(ITERATIONS_PER_DECADE * math.log10(n / 100_000) - 1e-9))


def ann_knn(X: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Approximate Euclidean k-neighbour graph (faiss NN-descent) of the rows of ``[N, D]`` ``X``, each row's
    own index excluded: ``([N, k]`` distances ascending, float64; ``[N, k]`` int64 indices into ``X``; a dict
    of what was built: method, K, iterations, pool, recall@k on the seeded sample and its size, rebuilt).

    ``seed`` picks NN-descent's random start and the recall sample. Below :data:`EXACT_BELOW` rows the graph
    is exact (recall 1). Peak memory beyond ``X``: two float32 copies of ``X`` while the rows are ordered, then
    one (faiss's storage, :func:`memory_order`) and NN-descent's pools (about ``(L + 2 R) x 4`` bytes per row at
    most).
    Raises ValueError when ``k >= N``; warns (one line) when recall stays under :data:`RECALL_TARGET`.
    """
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of rows ({n})")
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(n_threads())
        if n < EXACT_BELOW:
            dist, idx = _exact_rows(X, np.arange(n), k)
            return (
                dist,
                idx,
                {
                    "index": f"faiss {faiss.__version__} exact (fewer than {EXACT_BELOW} rows)",
                    "recall_at_k": 1.0,
                    "recall_sample": n,
                },
            )
        order, storage = _memory_order(X)
        Xs = faiss.rev_swig_ptr(storage.get_xb(), n * X.shape[1]).reshape(n, X.shape[1])  # a view, no copy
        huge = huge_pages(Xs)
        sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, RECALL_SAMPLE), replace=False))
        exact_d = _exact_rows(Xs, sample, k)[0]
        nnd_seed = int(np.random.default_rng(seed).integers(1, 2**31 - 1))
        first = nn_descent_iterations(n)
        builds = 0
        for iters, extra in ((first, POOL_EXTRA), (first + RETRY_EXTRA_ITERATIONS, RETRY_POOL_EXTRA)):
            builds += 1
            dist, idx, K = _nn_descent(storage, Xs, k, iters, extra, nnd_seed)
            recall = recall_at_k(dist[sample], exact_d)
            if recall >= RECALL_TARGET:
                break
        del Xs, storage
    finally:
        faiss.omp_set_num_threads(before)
    info = {
        "index": f"faiss {faiss.__version__} NNDescent",
        "K": K,
        "iterations": iters,
        "pool": K + extra,
        "recall_at_k": round(recall, 4),
        "recall_sample": len(sample),
        "rebuilt": builds > 1,
        "huge_pages": huge,
    }
    if recall < RECALL_TARGET:
        warnings.warn(
            f"approximate {k}-neighbour graph of {n} rows: recall@k {recall:.3f} on {len(sample)} sampled rows "
            f"is under {RECALL_TARGET} even after a rebuild with {iters} iterations (high intrinsic dimension); "
            "raise ann_threshold above the row count for exact search",
            stacklevel=2,
        )
    out_d = np.empty_like(dist)
    out_i = np.empty_like(idx)
    out_d[order] = dist
    out_i[order] = order[idx]  # positions in the memory order -> rows of X
    return out_d, out_i, info


def memory_order(X: np.ndarray) -> np.ndarray:
    """The order in which :func:`ann_knn` stores the rows of ``[N, D]`` ``X`` (NN-descent's ids are positions in
    it): :func:`content_order`, then :func:`cell_order` on the rows so ordered. A function of the set of rows."""
    return _memory_order(np.ascontiguousarray(X, dtype=np.float32))[0]


def _memory_order(X: np.ndarray) -> tuple[np.ndarray, Any]:
    """(:func:`memory_order` of float32 ``X``, a faiss ``IndexFlatL2`` holding the rows in that order). One
    BLAS/OpenMP thread (the k-means cells do not depend on the thread count); one transient copy of ``X``."""
    import faiss
    from threadpoolctl import threadpool_limits

    order = content_order(X)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        with threadpool_limits(1):
            Xc = X[order]
            perm = cell_order(Xc)
    finally:
        faiss.omp_set_num_threads(threads)
    storage = faiss.IndexFlatL2(X.shape[1])
    for a in range(0, len(X), SCAN_BLOCK):  # in blocks: no second full copy besides faiss's own
        storage.add(np.ascontiguousarray(Xc[perm[a : a + SCAN_BLOCK]]))
    return order[perm], storage


#: madvise(2) advice MADV_COLLAPSE (Linux >= 6.1, include/uapi/asm-generic/mman-common.h) and the x86-64/arm64
#: transparent huge page size
MADV_COLLAPSE, HUGE_PAGE = 25, 2**21


def huge_pages(a: np.ndarray) -> bool:
    """Ask Linux to back the memory of the array ``a`` with 2 MB transparent huge pages now (``madvise``
    ``MADV_COLLAPSE``, Linux >= 6.1; it works whatever the system's THP setting, ``madvise`` by default, short of
    ``never``). NN-descent reads rows at random: with 4 KB pages nearly every row read also misses the TLB
    (measured, lof's graph at 300,000 rows: 129.7 -> 110.9 CPU s; no change at 100,000 rows, nor in the first,
    random-graph iterations at 1,000,000 rows, where faiss's pools miss the caches as much; docs/detection.md).
    numpy asks for huge pages for its own large arrays, but faiss's storage is faiss's allocation. A hint only:
    the contents do not change, and where the call is unavailable or refused (other systems, older kernels,
    memory too fragmented) it returns False and nothing else happens."""
    if not sys.platform.startswith("linux") or a.nbytes < 2 * HUGE_PAGE:
        return False
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return False
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    lo = -(-a.ctypes.data // HUGE_PAGE) * HUGE_PAGE  # whole huge pages inside the array only
    hi = (a.ctypes.data + a.nbytes) // HUGE_PAGE * HUGE_PAGE
    return hi > lo and madvise(lo, hi - lo, MADV_COLLAPSE) == 0


def _nn_descent(
    storage: Any, Xs: np.ndarray, k: int, iters: int, extra: int, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """NN-descent graph of the float32 rows ``Xs`` held by the faiss ``IndexFlatL2`` ``storage`` (``Xs`` is its
    view; one build thread): ``[N, k]`` float64 distances ascending, ``[N, k]`` int64 indices, and the degree K
    built. A row whose K neighbours are not K distinct other rows in range (not seen, but faiss does not
    promise it) gets its neighbours exactly instead."""
    import faiss

    n, d = Xs.shape
    K = max(k, K_MIN)
    nnd = faiss.NNDescent(d, K)
    nnd.iter, nnd.L, nnd.S, nnd.R, nnd.random_seed = iters, K + extra, SAMPLE_S, REVERSE_R, seed
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # deterministic local joins (see the module docstring)
    try:
        dis = storage.get_distance_computer()
        nnd.build(dis, n, False)
    finally:
        faiss.omp_set_num_threads(threads)
    G = faiss.vector_to_array(nnd.final_graph).reshape(n, K).astype(np.int64)
    del nnd, dis
    d2 = np.empty((n, K), np.float32)
    for a in range(0, n, QUERY_CHUNK):
        b = min(n, a + QUERY_CHUNK)
        Gb = np.ascontiguousarray(np.clip(G[a:b], 0, n - 1))
        storage.compute_distance_subset(b - a, faiss.swig_ptr(Xs[a:b]), K, faiss.swig_ptr(d2[a:b]), faiss.swig_ptr(Gb))
    srt = np.sort(G, axis=1)
    bad = ((G < 0) | (G >= n) | (G == np.arange(n)[:, None])).any(axis=1) | (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    first = np.argsort(d2, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(G, first, axis=1)
    dist = _sqrt(np.take_along_axis(d2, first, axis=1))
    if bad.any():
        rows = np.flatnonzero(bad)
        dist[rows], idx[rows] = _exact_rows(Xs, rows, k)
    return dist, idx, K


def _exact_rows(X: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact neighbours of the rows ``rows`` of float32 ``X`` among all other rows: ``[M, k]`` float64
    distances ascending and ``[M, k]`` int64 indices. faiss's brute-force search (BLAS, O(M N D)) finds
    them; their distances are then taken from the differences themselves in float64 (the BLAS expansion
    |x|^2 + |y|^2 - 2 x.y loses the small distances of near-duplicates)."""
    import faiss

    d2, i = faiss.knn(X[rows], X, k + 1)
    i = _drop_self(_sqrt(d2), i, k, rows)[1]
    diff = X[i].astype(np.float64) - X[rows].astype(np.float64)[:, None, :]
    dist = np.sqrt(np.einsum("mkd,mkd->mk", diff, diff))
    o = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, o, axis=1), np.take_along_axis(i, o, axis=1)


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
