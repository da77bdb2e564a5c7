"""Active-learning re-ranking of the review queue: astronomaly's NeighbourScore.

Source: Lochner & Bassett 2021, "Astronomaly: personalised active anomaly detection in astronomical data",
Astronomy and Computing 36, 100481, arXiv:2010.11202, section 2.4 (and astronomaly's ``NeighbourScore``).
A regressor learns the expert's relevance score U from the embeddings of the labelled objects and predicts
Û for every object; with d the distance of an object to its nearest labelled object (mean d̄ over the queue)
and S the anomaly score rescaled to [0, 5]:

    f(Û) = u_min + 0.85 * Û / u_max                  (u_min = 0.1, u_max = 5)
    S_trained = S * tanh(exp(alpha * d / d̄) - 1 + arctanh(f(Û)))     (alpha = ``ALPHA``)

Far from any label, S_trained -> S (the detectors decide); next to labelled objects, S is scaled by f(Û), from
0.1 (like the artefacts and boring objects seen so far) to 0.95 (like the interesting ones).
Relevance per label (``RELEVANCE``): interesting 5, boring 0, artefact 0; "unsure" does not train.
The regressor is scikit-learn's RandomForestRegressor (100 trees, as in astronomaly) with a fixed seed, the
nearest-labelled distance scipy's cKDTree: kept libraries, not own code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import UsageError
from fmb.review.queue import ReviewQueue

RELEVANCE: dict[str, float] = {"interesting": 5.0, "boring": 0.0, "artefact": 0.0}
U_MIN, U_MAX, N_TREES = 0.1, 5.0, 100
#: astronomaly's distance scale ``alpha`` (its default is 1); see docs/review.md for the value used here
ALPHA = 0.1
#: principal components kept of the concatenated embeddings: nearest-label distances (d / d̄) carry
#: information in a few dimensions, not in thousands, where all distances look alike; astronomaly likewise
#: reduces high-dimensional (CNN) features with PCA before its active learning
FEATURE_DIMS = 10


@dataclass
class Ranked:
    """The re-ranking of the queue: arrays [N] aligned with ``queue.candidates``."""

    score: np.ndarray
    #: predicted relevance Û in [0, 5]; NaN before any training label
    relevance: np.ndarray
    #: distance to the nearest labelled object over its queue mean (d / d̄); NaN before any training label
    distance: np.ndarray


def _blocks(table: pa.Table) -> list[str]:
    """The embedding columns of a cache table (fixed-size lists of floats)."""
    return [f.name for f in table.schema if pa.types.is_fixed_size_list(f.type) and f.name != C.OBJECT_ID]


def queue_features(queue: ReviewQueue, dims: int = FEATURE_DIMS) -> np.ndarray:
    """Features of the queue's objects, float64 [N, min(dims, N, D)]: every output of every distinct embedding
    (model x cache key) of the runs, each row L2-normalised per output (missing modality: zeros), concatenated
    [N, D], then reduced to ``dims`` principal components (scikit-learn's PCA, full SVD: deterministic).

    Embeddings come from the cache by results.json's cache key (``fmb.probes.embeddings.run_embeddings``;
    re-embedded only when the cache is gone). UsageError when a queue object has no embedding.
    """
    from fmb.probes.embeddings import run_embeddings

    ids = [c.object_id for c in queue.candidates]
    seen: set[tuple[str, str]] = set()
    parts = []
    for run in queue.runs:
        key = (run.result["model"]["name"], run.result["embedding"]["cache_key"])
        if key in seen:
            continue
        seen.add(key)
        _res, table = run_embeddings(run.path)
        pos = {str(v): i for i, v in enumerate(table.column(C.OBJECT_ID).to_pylist())}
        missing = [o for o in ids if o not in pos]
        if missing:
            raise UsageError(f"review: object_id {missing[0]} has no embedding in {run.path}'s cache entry {key[1]}")
        take = pa.array([pos[o] for o in ids])
        for name in _blocks(table):
            col = table.column(name).take(take).combine_chunks()
            x = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(ids), -1)
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            parts.append(x / np.where(norm > 0, norm, 1.0))
    if not parts:
        raise UsageError("review: the runs' embeddings have no embedding column")
    return reduce(np.hstack(parts), dims)


def reduce(x: np.ndarray, dims: int = FEATURE_DIMS) -> np.ndarray:
    """The first ``dims`` principal components of ``x`` [N, D] (fewer when N or D is smaller)."""
    from sklearn.decomposition import PCA

    n = min(dims, x.shape[0], x.shape[1])
    return PCA(n_components=n, svd_solver="full").fit_transform(x) if n > 0 else x


def neighbour_score(anomaly: np.ndarray, relevance: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """S_trained from anomaly scores S [N] (0-5), predicted relevance Û [N] (0-5) and d / d̄ [N] (module doc)."""
    f = U_MIN + 0.85 * np.clip(relevance, 0.0, U_MAX) / U_MAX
    return anomaly * np.tanh(np.exp(ALPHA * distance) - 1.0 + np.arctanh(f))


def rerank(features: np.ndarray, fused: np.ndarray, labels: dict[int, str], seed: int = 0) -> Ranked:
    """Re-rank the queue after ``labels`` (queue position -> label).

    ``features`` float [N, D] (``queue_features``), ``fused`` the fused anomaly scores [N] in (0, 1] (rescaled
    here to [0, 5] as astronomaly's ScoreConverter does). Without any training label the score is S itself.
    """
    from scipy.spatial import cKDTree
    from sklearn.ensemble import RandomForestRegressor

    fused = np.asarray(fused, dtype=np.float64)
    lo, hi = fused.min(), fused.max()
    s = 5.0 * (fused - lo) / (hi - lo) if hi > lo else np.full(len(fused), 5.0)
    train = sorted(i for i, lab in labels.items() if lab in RELEVANCE)
    n = len(fused)
    if not train:
        return Ranked(s, np.full(n, np.nan), np.full(n, np.nan))
    y = np.array([RELEVANCE[labels[i]] for i in train])
    reg = RandomForestRegressor(n_estimators=N_TREES, random_state=seed, n_jobs=1)
    reg.fit(features[train], y)
    u = reg.predict(features)
    d = cKDTree(features[train]).query(features, k=1)[0]
    mean = d.mean()
    d = d / mean if mean > 0 else np.zeros(n)
    return Ranked(neighbour_score(s, u, d), u, d)


def order(ranked: Ranked, fused: np.ndarray, exclude: set[int]) -> list[int]:
    """Queue positions not in ``exclude``, best first: S_trained, then fused score, then position."""
    keep = [i for i in range(len(fused)) if i not in exclude]
    return sorted(keep, key=lambda i: (-ranked.score[i], -fused[i], i))
