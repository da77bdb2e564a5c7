"""Stage 1, resolve weights: parse ``--weights auto|random|none|PATH|hf:REPO[@REV]``.

The weights policy, one for every model plugin (:func:`resolve_source`): ``random`` is seeded random
initialisation; ``PATH`` a local file or folder; ``hf:REPO[@REV]`` the hub (:mod:`fmb.hub`; any failure is
an error); ``auto`` the plugin's official hub weights, and where those are unavailable (no official weights
for the asked-for size, not cached while offline, gated, unreachable) random initialisation with one loud
:class:`RandomWeightsWarning` (:func:`warn_random`); ``none`` is refused for a model with learned weights.
The plugin loads the returned source and records a :class:`fmb.models.base.WeightsInfo`
(``kind == "random"`` is then shown in every result).

Weights written by ``fmb retrain`` carry their provenance (:func:`retrained_provenance`: training data set and
split, steps, seed, sha256), and a run scoring objects they were trained on says so (:func:`training_overlap`).

Weights load strictly or not at all: :func:`load_state_dict_strict` (torch modules) and
:func:`check_tensors` (any named arrays) refuse a missing, unexpected or wrong-shape tensor with
one line naming the keys. A plugin records ``path``/``hf`` provenance only after that succeeded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmb.errors import ModelError, UsageError


@dataclass(frozen=True)
class WeightsRequest:
    kind: str  # auto | random | none | path | hf
    location: str = ""
    revision: str = ""


def parse_weights(text: str) -> WeightsRequest:
    """Parse the ``--weights`` value; a path must exist."""
    text = (text or "auto").strip()
    if text in ("auto", "random", "none"):
        return WeightsRequest(text)
    if text.startswith("hf:"):
        repo, _, rev = text[3:].partition("@")
        if repo.count("/") != 1:
            raise UsageError(f"--weights {text!r}: expected hf:OWNER/REPO[@REVISION]")
        return WeightsRequest("hf", repo, rev)
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(f"--weights {text!r}: no such file or folder (use auto, random, a path or hf:REPO)")
    return WeightsRequest("path", str(path.resolve()))


# ---------------------------------------------------------------------- the policy


class RandomWeightsWarning(RuntimeWarning):
    """``--weights auto`` found no weights: the model runs with random initialisation."""


@dataclass(frozen=True)
class WeightsSource:
    """What to load: ``kind`` random | path | hf; ``path`` the local file or folder (path, hf); ``location``
    the path as given or the hub repo id; ``revision`` the hub commit."""

    kind: str
    path: Path | None = None
    location: str = ""
    revision: str = ""


def warn_random(model: str, reason: str, seed: int, hint: str = "") -> None:
    """The one random-weights warning of every plugin (a :class:`RandomWeightsWarning`)."""
    warnings.warn(
        f"{model}: no weights found ({reason}): using RANDOM initialisation (seed {seed}); its "
        f"embeddings say nothing about the trained model{'. ' + hint if hint else ''}",
        RandomWeightsWarning,
        stacklevel=3,
    )


def resolve_source(
    weights: str | WeightsRequest,
    *,
    model: str,
    seed: int,
    fetch: Callable[[str, str], Any] | None,
    official: str = "",
    no_official: str = "",
    hint: str = "",
) -> WeightsSource:
    """Apply the weights policy (module docstring) to ``--weights``; nothing is loaded here.

    ``fetch(repo, revision) -> fmb.hub.HubPath`` gets hub weights (raising :class:`fmb.hub.HubError` when
    unavailable); ``official`` is the repo ``auto`` tries; ``no_official`` a reason why there are none for
    this configuration (``auto`` then goes straight to random). ``hint`` ends the warning (how to get
    weights). Raises :class:`ModelError` for ``none`` and for ``hf:`` weights that cannot be had,
    :class:`UsageError` for a path that does not exist.
    """
    from fmb.hub import HubError

    req = weights if isinstance(weights, WeightsRequest) else parse_weights(weights)
    if req.kind == "none":
        raise ModelError(f"model {model!r} has learned weights: use --weights auto, random, a path or hf:REPO[@REV]")
    if req.kind == "random":
        return WeightsSource("random")
    if req.kind == "path":
        return WeightsSource("path", Path(req.location), req.location)
    if req.kind == "hf":
        if fetch is None:
            raise ModelError(f"model {model!r} does not load weights from the hub")
        got = fetch(req.location, req.revision)
        return WeightsSource("hf", got.path, got.repo, got.revision)
    reason = no_official or ("" if official and fetch is not None else "it has no official weights")
    if not reason:
        try:
            got = fetch(official, "")  # type: ignore[misc]
            return WeightsSource("hf", got.path, got.repo, got.revision)
        except HubError as exc:
            reason = str(exc)
    warn_random(model, reason, seed, hint)
    return WeightsSource("random")


# ---------------------------------------------------------------------- strict loading
#: How many names of each kind a mismatch message lists before "and N more".
SHOW_KEYS = 5


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOW_KEYS])
    return shown + (f" and {len(keys) - SHOW_KEYS} more" if len(keys) > SHOW_KEYS else "")


def check_tensors(expected: Mapping[str, Sequence[int]], found: Mapping[str, Sequence[int]], source: str) -> None:
    """Refuse weights whose tensor names or shapes differ from what the model expects.

    ``expected`` and ``found`` map tensor names to shapes (the model's and the file's, after any
    documented renaming). Raises :class:`fmb.errors.ModelError`, one line naming ``source`` and, for
    each kind of mismatch (missing, unexpected, wrong shape), the first :data:`SHOW_KEYS` keys in
    sorted order and how many more there are. Returns nothing when they match exactly.
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_names(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_names(unexpected)})")
    if wrong:
        shapes = [f"{k} {list(found[k])} vs model {list(expected[k])}" for k in wrong]
        parts.append(f"{len(wrong)} of the wrong shape ({_names(shapes)})")
    raise ModelError(f"{source}: the weights do not match the model: {'; '.join(parts)}")


def _tied(module_state: Mapping[str, Any]) -> list[list[str]]:
    """Groups of the module's state entries that are one tensor under several names (tied weights)."""
    groups: dict[tuple, list[str]] = {}
    for k, v in module_state.items():
        if v.device.type == "meta":  # no storage to compare
            continue
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        groups.setdefault(key, []).append(k)
    return [g for g in groups.values() if len(g) > 1]


def load_state_dict_strict(module: Any, state_dict: Mapping[str, Any], source: str, *, assign: bool = False) -> None:
    """Load ``state_dict`` into the torch ``module`` only if names and shapes match exactly.

    The one owner of FMB's weights policy ("weights load strictly or not at all"): every model plugin
    loads through here. The comparison is done first (:func:`check_tensors`, one-line
    :class:`fmb.errors.ModelError` naming ``source`` and the missing / unexpected / wrong-shape keys),
    then ``module.load_state_dict(strict=True)``. Callers apply their documented renames (e.g.
    torch.compile's ``_orig_mod.`` prefix) before calling.

    One rename is handled here: tied weights (several names for one tensor in ``module``). safetensors
    stores such a tensor once (``safetensors.torch.save_model`` drops the duplicate names), so a name
    missing from ``state_dict`` is accepted when another name of the same tied tensor is present; the
    tensor is loaded once and stays tied. ``assign`` adopts the file's tensors (for a module built on
    the meta device, where ties cannot be seen).
    """
    mine = module.state_dict()
    state = dict(state_dict)
    for group in _tied(mine):
        present = [k for k in group if k in state]
        for k in group:
            if k not in state and present:
                state[k] = state[present[0]]
    check_tensors(
        {k: tuple(v.shape) for k, v in mine.items()},
        {k: tuple(getattr(v, "shape", ())) for k, v in state.items()},
        source,
    )
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:  # e.g. a dtype torch cannot copy: still one line
        raise ModelError(f"{source}: could not load the weights: {' '.join(str(exc).split())[:300]}") from None


# ---------------------------------------------------------------------- retrained weights: provenance, overlap
#: the summary ``fmb retrain`` writes beside the weights (:data:`fmb.training.SUMMARY`) and the ids of the
#: objects the weights were trained and selected on (:data:`fmb.training.OBJECTS`)
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


def training_overlap(provenance: dict[str, Any] | None, dataset: Any, ids: Any) -> int | None:
    """How many of the scored objects (``ids``: object ids of ``dataset``) the retrained weights were
    trained or validated on; None when ``provenance`` is None (not retrained weights) or does not name
    its objects.

    Objects are the same when the data sets have the same name and the same object pool
    (``Dataset.object_pool``: the synthetic survey's fingerprint, shared by ``split=all`` and ``test``;
    "" for a data set whose ids name objects across its files) and the ids are equal (compared as strings). Another data
    set or pool counts as 0. Raises :class:`ModelError` when ``objects.parquet`` is named but unreadable.
    """
    if not provenance or not provenance.get("folder") or provenance.get("dataset") is None:
        return None
    if provenance.get("dataset") != dataset.name:
        return 0
    if (provenance.get("dataset_pool") or "") != (getattr(dataset, "object_pool", "") or ""):
        return 0
    path = Path(provenance["folder"]) / RETRAIN_OBJECTS
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        trained = pq.read_table(path, columns=["object_id"]).column("object_id").to_pylist()
    except Exception as exc:  # any Arrow/OS failure: one line naming the file
        raise ModelError(f"{path}: unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    seen = {str(i) for i in trained}
    return sum(str(i) in seen for i in ids)
