"""Retrained weights: where ``fmb retrain`` records their provenance, and reading it back.

``fmb retrain`` (:mod:`fmb.training`) writes ``retrain.json`` (data set, split, seed, steps, sha256 of the
weights) and ``objects.parquet`` (the ids trained and validated on) beside the weights. When a model is
loaded from such weights, :func:`retrained_provenance` attaches that record to ``model.weights`` (only when
the sha256 matches), and :func:`training_overlap` counts the scored objects the weights have seen.
A core module (no protocol imports), so that the registry's one model loader can use it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from fmb.errors import ModelError

# ---------------------------------------------------------------------- retrained weights: provenance, overlap
#: the summary ``fmb retrain`` writes beside the weights and the ids of the objects the weights were trained
#: and selected on (``fmb.training`` writes both under these names)
RETRAIN_SUMMARY = "retrain.json"
RETRAIN_OBJECTS = "objects.parquet"
#: what results.json records of a retrain.json (``model.weights.retrained``): retrain.json key -> recorded key
PROVENANCE_KEYS = {
    "model": "model",
    "dataset": "dataset",
    "dataset_spec": "dataset_spec",
    "dataset_options": "dataset_options",
    "dataset_fingerprint": "dataset_fingerprint",
    "dataset_pool": "dataset_pool",
    "steps_run": "steps",
    "best_step": "best_step",
    "n_train": "n_train",
    "n_val": "n_val",
    "weights_file": "weights_file",
    "sha256": "sha256",
    "weights": "base_weights",
}


def retrained_provenance(path: str | Path, sha256: str) -> dict[str, Any] | None:
    """The provenance of weights loaded from ``path`` (a file or a folder) whose bytes hash to ``sha256``,
    read from the ``retrain.json`` that ``fmb retrain`` wrote beside them: the training data set (spec,
    options incl. ``split``, fingerprint, pool), steps, best step, seed, weights file and its sha256, the
    starting weights, and ``folder``. None when there is no ``retrain.json`` (weights not written by
    ``fmb retrain``, or a run that has not finished), or when it describes other bytes (its ``sha256``
    differs: e.g. a later run's weights copied over): then a one-line warning says so. Raises
    :class:`ModelError` for a ``retrain.json`` that is not JSON.
    """
    import json

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    summary = folder / RETRAIN_SUMMARY
    if not summary.is_file():
        return None
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError) as exc:  # provenance that cannot be read is refused, not dropped
        raise ModelError(f"{summary}: unreadable ({exc}): the weights' retraining provenance is unknown") from None
    if not isinstance(data, dict) or "sha256" not in data:
        return None  # written before provenance was recorded
    if data["sha256"] != sha256:
        warnings.warn(
            f"{summary} describes weights with sha256 {str(data['sha256'])[:12]}..., not the loaded "
            f"{sha256[:12]}...: their retraining provenance is not recorded",
            stacklevel=2,
        )
        return None
    out = {new: data.get(old) for old, new in PROVENANCE_KEYS.items()}
    out["seed"] = (data.get("config") or {}).get("seed")
    out["split"] = (data.get("dataset_options") or {}).get("split", "")
    out["folder"] = str(folder.resolve())
    return out


def training_chain(provenance: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The retraining stages behind weights: ``provenance`` itself, then the provenance of the weights it
    started from (``base_weights.retrained``: e.g. AION's ``--part codecs`` run that a ``--part encoder`` run
    continued), and so on; a stage seen twice (the same folder) ends the chain."""
    chain: list[dict[str, Any]] = []
    folders: set[str] = set()
    while isinstance(provenance, dict) and str(provenance.get("folder")) not in folders:
        chain.append(provenance)
        folders.add(str(provenance.get("folder")))
        provenance = (provenance.get("base_weights") or {}).get("retrained")
    return chain


def training_overlap(provenance: dict[str, Any] | None, dataset: Any, ids: Any) -> int | None:
    """How many of the scored objects (``ids``: object ids of ``dataset``) the retrained weights were
    trained or validated on, in any stage of their :func:`training_chain` (weights retrained from retrained
    weights have seen both stages' objects); None when ``provenance`` is None (not retrained weights) or no
    stage names its objects.

    Objects are the same when the data sets have the same name and the same object pool
    (``Dataset.object_pool``: the synthetic survey's fingerprint, shared by ``split=all`` and ``test``;
    "" for a data set whose ids name objects across its files) and the ids are equal (compared as strings). Another data
    set or pool counts as 0. Raises :class:`ModelError` when an ``objects.parquet`` is named but unreadable.
    """
    seen: set[str] = set()
    named = False
    for stage in training_chain(provenance):
        ids_of_stage = _stage_objects(stage, dataset)
        named = named or ids_of_stage is not None
        seen |= ids_of_stage or set()
    if not named:
        return None
    return sum(str(i) in seen for i in ids)


def overlap_sources(provenance: dict[str, Any] | None, dataset: Any, ids: Any) -> list[str]:
    """The ``dataset_spec`` of each stage of the :func:`training_chain` that was trained or validated on some of
    the scored objects (``ids`` of ``dataset``), latest stage first: what a warning about the overlap names."""
    wanted = {str(i) for i in ids}
    out = []
    for stage in training_chain(provenance):
        if wanted & (_stage_objects(stage, dataset) or set()):
            out.append(str(stage.get("dataset_spec") or stage.get("dataset")))
    return out


def _stage_objects(stage: dict[str, Any], dataset: Any) -> set[str] | None:
    """The ids (as strings) one retraining stage was trained and validated on, when they are objects of
    ``dataset`` (same name and object pool; else the empty set); None when the stage names no objects file."""
    if not stage.get("folder") or stage.get("dataset") is None:
        return None
    path = Path(stage["folder"]) / RETRAIN_OBJECTS
    if not path.is_file():
        return None
    if stage.get("dataset") != dataset.name:
        return set()
    if (stage.get("dataset_pool") or "") != (getattr(dataset, "object_pool", "") or ""):
        return set()
    return _object_ids(path)


def _object_ids(path: Path) -> set[str]:
    """The ids of an ``objects.parquet``, as strings. Raises ModelError (one line naming the file)."""
    import pyarrow.parquet as pq

    try:
        trained = pq.read_table(path, columns=["object_id"]).column("object_id").to_pylist()
    except Exception as exc:  # any Arrow/OS failure: one line naming the file
        raise ModelError(f"{path}: unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return {str(i) for i in trained}


# ---------------------------------------------------------------------- how results.json's weights are shown
#: ``WeightsInfo.kind`` -> the name the summary, leaderboard and report show (``hf``: the plugin's own weights)
KIND_NAMES = {"hf": "official", "random": "random", "path": "path", "none": "none"}
#: marks a row whose weights were trained on scored objects (summary, leaderboard); :func:`not_held_out_note`
NOT_HELD_OUT = "†"


def not_held_out_note(count: Any) -> str:
    """The footnote of a row marked :data:`NOT_HELD_OUT` (``count``: the trained-on scored objects)."""
    return f"{NOT_HELD_OUT} not held-out numbers: the retrained weights were trained on {count} of the scored objects"


def _start_label(weights: dict[str, Any]) -> str:
    """``random (seed N)``, ``official``, ``path`` or ``none``: what a kind of weights is called."""
    kind = weights.get("kind") or "?"
    name = KIND_NAMES.get(kind, kind)
    if kind == "random" and weights.get("seed") is not None:
        name += f" (seed {weights['seed']})"
    return name


def weights_facts(weights: dict[str, Any] | None) -> dict[str, Any]:
    """What every view of a run (the end-of-run summary, the leaderboard, the report) says about its weights,
    read from results.json's ``model.weights`` (one reader, so that the views agree):

    - ``kind``: ``retrained`` (written by ``fmb retrain``: ``retrained`` provenance recorded), else
      ``official`` (``hf``), ``random``, ``path`` or ``none``;
    - ``label``: the kind, and for retrained weights where the chain of retraining stages
      (:func:`training_chain`) started: ``retrained from random (seed 0)``, ``retrained from official``,
      ``retrained (2 stages) from random (seed 0)``; random weights also name their seed;
    - ``trained_on_scored_objects``: how many scored objects the weights were trained or validated on
      (``model.weights.trained_on_scored_objects``; None when not recorded);
    - ``held_out``: False when that count is above 0 (the numbers are not held-out numbers), else True.
    """
    weights = weights or {}
    prov = weights.get("retrained")
    count = weights.get("trained_on_scored_objects")
    if isinstance(prov, dict):
        chain = training_chain(prov)
        origin = chain[-1].get("base_weights") or {}
        stages = f" ({len(chain)} stages)" if len(chain) > 1 else ""
        kind, label = "retrained", f"retrained{stages} from {_start_label(origin) if origin else 'unknown weights'}"
    else:
        kind = KIND_NAMES.get(weights.get("kind") or "?", weights.get("kind") or "?")
        label = _start_label(weights)
    return {"kind": kind, "label": label, "trained_on_scored_objects": count, "held_out": not count}
