"""Helpers for testing FMB and FMB plugins: a tiny canonical data set and plugin registration.

Names load lazily, so that importing a submodule (e.g. the light ``fmb.testing.toy_plugin``)
does not import numpy and pyarrow.
"""

from __future__ import annotations

from typing import Any

_WHERE = {
    "ToyDataset": "fmb.testing.toy",
    "open_toy_dataset": "fmb.testing.toy",
    "toy_dataset_plugin": "fmb.testing.toy_plugin",
    "registered_plugin": "fmb.testing.plugins",
}

__all__ = ["ToyDataset", "open_toy_dataset", "registered_plugin", "toy_dataset_plugin"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fmb.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
