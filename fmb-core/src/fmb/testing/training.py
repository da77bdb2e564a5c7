"""A toy training task for tests of ``fmb retrain``'s machinery (:func:`fmb.training.fit`): provenance,
objects trained on, weights labels. Not a model: a 1 -> 1 linear layer learning y = 3x."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the file :meth:`LinearTask.save` writes in the run folder
WEIGHTS_FILE = "w.pt"


class LinearTask:
    """The task protocol of :func:`fmb.training.fit` on the object ``ids`` (``[N]``), starting from ``weights``
    (a :class:`fmb.models.base.WeightsInfo`; default seeded random), seeded with torch seed 0."""

    def __init__(self, ids: Any, weights: Any = None) -> None:
        import torch

        from fmb.models.base import WeightsInfo

        torch.manual_seed(0)
        self.module = torch.nn.Linear(1, 1)
        self.ids = np.asarray(ids)
        self.x = torch.linspace(-1, 1, len(ids))[:, None]
        self.weights = weights if weights is not None else WeightsInfo(kind="random", seed=0)

    def parameters(self) -> list:
        return list(self.module.parameters())

    def loss(self, idx: Any) -> Any:
        import torch

        return torch.nn.functional.mse_loss(self.module(self.x[idx]), 3 * self.x[idx])

    def evaluate(self, idx: Any) -> dict[str, float]:
        return {"val_loss": float(self.loss(idx).detach())}

    def save(self, folder: Path) -> Path:
        import torch

        torch.save(self.module.state_dict(), folder / WEIGHTS_FILE)
        return folder / WEIGHTS_FILE
