"""The model interface: canonical batches in, embeddings out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.specs import ModelSpec


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from; recorded in every result.

    ``kind`` is ``none`` (no learned parameters), ``random`` (random initialisation),
    ``path`` (a local file or folder) or ``hf`` (the Hugging Face hub or its cache).
    ``sha256`` identifies the bytes loaded (the embedding cache keys on it).
    """

    kind: str
    location: str = ""
    revision: str = ""
    sha256: str = ""
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cache_id(self) -> str:
        """What identifies these weights for the embedding cache."""
        if self.kind == "random":
            return f"random:seed={self.seed}"
        return f"{self.kind}:{self.sha256 or self.location}@{self.revision}"


class Model(ABC):
    """A loaded model. ``embed`` must be deterministic and independent of batch mates.

    Rows whose input modality is missing (e.g. an entirely masked spectrum) get NaN rows in
    the outputs that need it: no output rather than a made-up one.
    """

    def __init__(self, spec: ModelSpec, weights: WeightsInfo, options: dict[str, Any]) -> None:
        self.spec = spec
        self.weights = weights
        self.options = options

    @property
    def outputs(self) -> dict[str, int]:
        """Output name -> dimension (defaults to the spec's)."""
        return dict(self.spec.outputs)

    @abstractmethod
    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Embeddings of one canonical batch: output name -> float32 ``[N, dim]``."""

    def settings(self) -> dict[str, Any]:
        """Everything besides weights that changes the embeddings (part of the cache key)."""
        return dict(self.options)

    def input_adaptation(self, schema: pa.Schema) -> dict[str, Any] | None:
        """What the model's preprocessing does to data of this canonical ``schema`` (recorded in
        results.json): for a model that adapts through :mod:`fmb.adapt`, its plan (band map, pixel-scale
        resampling, crop/pad, units). ``None`` (default): not described."""
        return None
