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
