"""A simulated expert: labels the queue with the data set's truth and measures the discovery curve.

The expert calls an object "interesting" when its true class is an anomaly class that is not an artefact
(lens, merger, agn, eelg, mismatch on the synthetic survey), "artefact" when its class is one of the data
set's ``artefact_classes`` (sat_trail, cosmic_ray, dead_arm), and "boring" when it is normal. The curve is the
number of interesting objects found after each of the first ``budget`` inspections, with active learning
(``fmb.review.active``: re-ranked after every label) and without it (the plain fused order of the queue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb.data.canonical import NORMAL_CLASS
from fmb.errors import DataError, UsageError
from fmb.io import atomic_path, write_json
from fmb.review import active
from fmb.review.queue import ReviewQueue


def expert_label(truth: str | None, artefacts: tuple[str, ...]) -> str:
    """The simulated expert's label of an object whose true class is ``truth``."""
    if truth is None:
        raise DataError("review --simulate: the data set has no labels (anomaly_class / is_anomaly)")
    if truth in artefacts:
        return "artefact"
    return "boring" if truth == NORMAL_CLASS else "interesting"


def discovery(
    queue: ReviewQueue, features: np.ndarray | None, budget: int, use_active: bool, seed: int = 0
) -> list[int]:
    """Interesting objects found after 1..budget inspections (capped at the queue's length)."""
    truth = [expert_label(c.truth, queue.artefact_classes) for c in queue.candidates]
    fused = np.array([c.fused for c in queue.candidates])
    n = min(budget, len(truth))
    if not use_active:
        return np.cumsum([t == "interesting" for t in truth[:n]]).tolist()
    labels: dict[int, str] = {}
    found, curve = 0, []
    ranked = active.rerank(features, fused, labels, seed)
    for _ in range(n):
        nxt = active.order(ranked, fused, set(labels))[0]
        labels[nxt] = truth[nxt]
        found += truth[nxt] == "interesting"
        curve.append(found)
        ranked = active.rerank(features, fused, labels, seed)
    return curve


def simulate(queue: ReviewQueue, budget: int, out_dir: str | Path, seed: int = 0) -> dict:
    """Both discovery curves; writes ``simulation.json`` and ``simulation.png`` in ``out_dir``; returns the JSON."""
    if budget < 1:
        raise UsageError(f"review --simulate: --budget must be at least 1, got {budget}")
    features = active.queue_features(queue)
    plain = discovery(queue, None, budget, False, seed)
    act = discovery(queue, features, budget, True, seed)
    truth = [expert_label(c.truth, queue.artefact_classes) for c in queue.candidates]
    n = len(act)
    result = {
        "budget": budget,
        "inspected": n,
        "seed": seed,
        "queue_length": len(queue.candidates),
        "top": queue.top,
        "systems": queue.systems,
        "artefact_classes": list(queue.artefact_classes),
        "interesting_in_queue": truth.count("interesting"),
        "method": "astronomaly NeighbourScore (Lochner & Bassett 2021, arXiv:2010.11202): "
        f"S * tanh(exp({active.ALPHA} d/mean d) - 1 + arctanh(0.1 + 0.85 U/5)), U from RandomForestRegressor "
        "on the per-system log ranks, trained from the first interesting label on",
        "found_active": act[-1] if act else 0,
        "found_plain": plain[-1] if plain else 0,
        "ratio": (act[-1] / plain[-1]) if plain and plain[-1] else None,
        "curve_active": act,
        "curve_plain": plain,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "simulation.json")
    plot_discovery(result, out / "simulation.png")
    return result


def plot_discovery(result: dict, path: Path) -> Path:
    """The two discovery curves (interesting objects found vs objects inspected) as a PNG."""
    from fmb.report.figures import plt

    fig = plt().figure(figsize=(5.0, 3.4), dpi=100)
    ax = fig.add_subplot(111)
    x = np.arange(1, result["inspected"] + 1)
    ax.plot(x, result["curve_active"], label=f"active learning ({result['found_active']})", color="C1")
    ax.plot(x, result["curve_plain"], label=f"plain fused ranking ({result['found_plain']})", color="C0", ls="--")
    ax.set_xlabel("objects inspected")
    ax.set_ylabel("interesting objects found")
    ax.set_title(f"simulated expert, {len(result['systems'])} systems", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt().close(fig)
    return path
