"""Faulty variants of a state dict, for testing that a plugin loads weights strictly.

Each plugin test saves a tiny model's weights, corrupts them with :func:`weight_faults`, writes them
back in its own format and checks that loading raises a one-line :class:`fmb.errors.ModelError`
naming the key (see :func:`fmb.protocol.weights.load_state_dict_strict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The name given to the tensor that the ``extra`` fault adds.
EXTRA_KEY = "fmb_test_extra.weight"


def weight_faults(state: Mapping[str, Any], key: str | None = None) -> dict[str, tuple[dict[str, Any], str]]:
    """``{fault: (corrupted copy of state, key the error must name)}`` for the four kinds of fault.

    ``renamed`` (``key`` -> ``key + "_renamed"``: the error names the missing ``key``), ``dropped``
    (``key`` removed), ``extra`` (a tensor :data:`EXTRA_KEY` added) and ``wrong_shape`` (``key``
    one row longer). ``key`` defaults to the last tensor with at least one dimension. Tensors are
    torch tensors; ``state`` is not modified.
    """
    import torch

    if key is None:
        key = [k for k, v in state.items() if v.ndim >= 1][-1]
    v = state[key]
    renamed = {(k + "_renamed" if k == key else k): t for k, t in state.items()}
    dropped = {k: t for k, t in state.items() if k != key}
    extra = {**state, EXTRA_KEY: torch.zeros(3, dtype=v.dtype)}
    wrong = {**state, key: torch.zeros((v.shape[0] + 1, *v.shape[1:]), dtype=v.dtype)}
    return {
        "renamed": (renamed, key),
        "dropped": (dropped, key),
        "extra": (extra, EXTRA_KEY),
        "wrong_shape": (wrong, key),
    }
