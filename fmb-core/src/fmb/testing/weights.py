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


def assert_one_line_naming(exc_info: Any, plugin: str, *names: str) -> str:
    """Assert a raised error is one line, starts with ``"<plugin>: "`` and names every string in ``names``.

    ``exc_info`` is pytest's ``ExceptionInfo`` (from ``pytest.raises``). Returns the message.
    """
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{plugin}: "), msg
    for name in names:
        assert name in msg, msg
    return msg


def assert_run_refuses_weights(model: str, weights: str, out_dir: Any, *names: str) -> str:
    """``fmb run --model MODEL --weights WEIGHTS`` on the toy data set must exit 2 with one ``Error:``
    line naming every string in ``names``, and write no results.json into ``out_dir``.

    The ``toy`` data set must be registered (``fmb.testing.toy``). Returns the error line.
    """
    from pathlib import Path

    from click.testing import CliRunner

    from fmb.cli import cli

    out = Path(out_dir)
    args = ["run", "--model", model, "--weights", str(weights), "--detector", "iforest"]
    args += ["--dataset", "toy:size=8", "--output", str(out), "-q", "--no-report"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    for name in names:
        assert name in errors[0], errors[0]
    assert not (out / "results.json").exists()
    return errors[0]
