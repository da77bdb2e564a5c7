"""Active-learning re-ranking of the review queue: astronomaly's NeighbourScore.

Source: Lochner & Bassett 2021, "Astronomaly: personalised active anomaly detection in astronomical data",
Astronomy and Computing 36, 100481, arXiv:2010.11202, section 2.4 (and astronomaly's ``NeighbourScore``).
A regressor learns the expert's relevance score U from the features of the labelled objects and predicts
Û for every object; with d the distance of an object to its nearest labelled object (mean d̄ over the queue)
and S the anomaly score rescaled to [0, 5]:

    f(Û) = u_min + 0.85 * Û / u_max                  (u_min = 0.1, u_max = 5)
    S_trained = S * tanh(exp(alpha * d / d̄) - 1 + arctanh(f(Û)))     (alpha = ``ALPHA``)

Far from any label, S_trained -> S (the detectors decide); next to labelled objects, S is scaled by f(Û), from
0.1 (like the artefacts and boring objects seen so far) to 0.95 (like the interesting ones).

Feature space (``queue_features``): the log rank of the object in each system (model x detector x modality),
i.e. the detectors' verdicts on the object (log: ranks 1 and 10 differ more than 200 and 210). On the
survey's embeddings themselves (PCA of the concatenated outputs) the interesting objects of the queue are not
each other's neighbours (leave-one-out 5-NN AUROC 0.58 on seed 0), so a regressor there learns noise and the
0.1-0.95 factor f(Û) scrambles the fused order; on the log ranks it is 0.74 (seed 0) / 0.74 (seed 1): the
labels teach which systems flag interesting objects and which flag artefacts (docs/review.md).
Cold start: until the first "interesting" label the regressor has no positive to learn from (it would predict
Û = 0 everywhere, and only the distance term would reorder S), so the score stays S; astronomaly likewise
ranks by the anomaly score until the expert has labelled and asks for retraining.
Relevance per label (``RELEVANCE``): interesting 5, boring 0, artefact 0; "unsure" does not train.
The regressor is scikit-learn's RandomForestRegressor (100 trees, as in astronomaly) with a fixed seed; the
nearest-labelled distance is FMB's one neighbour helper (:func:`fmb.detectors.neighbours.nearest_distance`, an
exact blocked scan: few labelled objects, so O(N x labels) with no index to build).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmb.errors import UsageError
from fmb.review.queue import ReviewQueue

RELEVANCE: dict[str, float] = {"interesting": 5.0, "boring": 0.0, "artefact": 0.0}
U_MIN, U_MAX, N_TREES = 0.1, 5.0, 100
#: astronomaly's distance scale ``alpha`` (its default is 1); see docs/review.md for the value used here
ALPHA = 0.1
#: "interesting" labels needed before the regressor is trained (cold start: until then the score is S)
MIN_POSITIVES = 1


@dataclass
class Ranked:
    """The re-ranking of the queue: arrays [N] aligned with ``queue.candidates``."""

    score: np.ndarray
    #: predicted relevance Û in [0, 5]; NaN before the regressor is trained (cold start)
    relevance: np.ndarray
    #: distance to the nearest labelled object over its queue mean (d / d̄); NaN before the regressor is trained
    distance: np.ndarray


def queue_features(queue: ReviewQueue) -> np.ndarray:
    """Features of the queue's objects, float64 [N, n_systems]: log of the object's 1-based rank in each system
    (``Candidate.ranks``; a system that did not rank the object counts as one past the worst rank it gave in the
    queue). Log, because the difference between ranks 1 and 10 matters more than between 200 and 210.
    UsageError when the queue has no systems.
    """
    if not queue.systems:
        raise UsageError("review: the runs hold no scored systems")
    cols = []
    for name in queue.systems:
        ranks = [c.ranks.get(name) for c in queue.candidates]
        worst = max((r for r in ranks if r is not None), default=0) + 1
        cols.append([worst if r is None else r for r in ranks])
    return np.log(np.asarray(cols, dtype=np.float64).T)


def neighbour_score(anomaly: np.ndarray, relevance: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """S_trained from anomaly scores S [N] (0-5), predicted relevance Û [N] (0-5) and d / d̄ [N] (module doc)."""
    f = U_MIN + 0.85 * np.clip(relevance, 0.0, U_MAX) / U_MAX
    return anomaly * np.tanh(np.exp(ALPHA * distance) - 1.0 + np.arctanh(f))


def rerank(features: np.ndarray, fused: np.ndarray, labels: dict[int, str], seed: int = 0) -> Ranked:
    """Re-rank the queue after ``labels`` (queue position -> label).

        ``features`` float [N, D] (``queue_features``), ``fused`` the fused anomaly scores [N] in (0, 1] (rescaled
        here to [0, 5] as astronomaly's ScoreConverter does). Before ``MIN_POSITIVES`` "interesting" labels the score
    is S itself (cold start).
    """
    from sklearn.ensemble import RandomForestRegressor

    from fmb.detectors.neighbours import nearest_distance

    fused = np.asarray(fused, dtype=np.float64)
    lo, hi = fused.min(), fused.max()
    s = 5.0 * (fused - lo) / (hi - lo) if hi > lo else np.full(len(fused), 5.0)
    train = sorted(i for i, lab in labels.items() if lab in RELEVANCE)
    n = len(fused)
    if sum(labels[i] == "interesting" for i in train) < MIN_POSITIVES:
        return Ranked(s, np.full(n, np.nan), np.full(n, np.nan))
    y = np.array([RELEVANCE[labels[i]] for i in train])
    reg = RandomForestRegressor(n_estimators=N_TREES, random_state=seed, n_jobs=1)
    reg.fit(features[train], y)
    u = reg.predict(features)
    d = nearest_distance(features, features[train])
    mean = d.mean()
    d = d / mean if mean > 0 else np.zeros(n)
    return Ranked(neighbour_score(s, u, d), u, d)


def order(ranked: Ranked, fused: np.ndarray, exclude: set[int]) -> list[int]:
    """Queue positions not in ``exclude``, best first: S_trained, then fused score, then position."""
    keep = [i for i in range(len(fused)) if i not in exclude]
    return sorted(keep, key=lambda i: (-ranked.score[i], -fused[i], i))
