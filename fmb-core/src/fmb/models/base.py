"""The model interface: canonical batches in, embeddings out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.errors import ModelError
from fmb.specs import ModelSpec


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from; recorded in every result.

    ``kind`` is ``none`` (no learned parameters), ``random`` (random initialisation),
    ``path`` (a local file or folder) or ``hf`` (the Hugging Face hub or its cache).
    ``sha256`` is a hash of the bytes loaded (of every file loaded, for a folder); the embedding
    cache keys on it (see :meth:`identity`), so a plugin must set it for ``path`` and ``hf``.
    ``retrained``: the provenance of weights written by ``fmb retrain`` (training data set and split, steps,
    seed, sha256; :func:`fmb.retrained.retrained_provenance`), None for any other weights; the summary
    shows such weights as ``retrained``, never as the plugin's own.
    """

    kind: str
    location: str = ""
    revision: str = ""
    sha256: str = ""
    seed: int | None = None
    retrained: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["retrained"] is None:  # absent, as before the field existed (cache keys of other weights unchanged)
            del d["retrained"]
        return d

    def identity(self, model: str = "") -> dict[str, Any]:
        """What identifies these weights in the embedding cache key.

        Loaded weights (``path``, ``hf``) are identified by the content hash of the bytes loaded
        (``sha256``, set by the plugin) and ``seed`` (parts a partial checkpoint leaves random), not by
        where they were found: the same bytes share a cache, other bytes never do. ``random`` and
        ``none`` keep every field (the seed and the initialisation's description). Raises ModelError
        when loaded weights carry no content hash.
        """
        if self.kind in ("path", "hf"):
            if not self.sha256:
                raise ModelError(
                    f"model {model!r}: weights {self.kind}:{self.location} carry no content hash "
                    "(WeightsInfo.sha256): the plugin must record the hash of the files it loaded"
                )
            return {"kind": "loaded", "sha256": self.sha256, "seed": self.seed}
        # the provenance of a retrained part (AION's adapter) is not what shapes the embeddings: its bytes are
        return {k: v for k, v in self.to_dict().items() if k != "retrained"}


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

    def prepare(self, batch: pa.RecordBatch) -> Any:
        """The host-side work of :meth:`embed` for one batch (decoding Arrow, preprocessing, tokenising:
        no forward pass), returned in whatever form :meth:`embed_prepared` takes. The embed stage calls it
        in the prefetching loader's thread, so it overlaps the previous batch's forward pass; torch
        tensors in the result are pinned there when the model runs on CUDA
        (:func:`fmb.protocol.accel.pin`), so keep them on the CPU. Default: the batch itself."""
        return batch

    def embed_prepared(self, prepared: Any) -> dict[str, np.ndarray]:
        """Embeddings of what :meth:`prepare` returned; ``embed(b)`` must equal
        ``embed_prepared(prepare(b))`` exactly. Default: :meth:`embed`."""
        return self.embed(prepared)

    def settings(self) -> dict[str, Any]:
        """Everything besides weights that changes the embeddings (part of the cache key)."""
        return dict(self.options)

    def input_adaptation(self, schema: pa.Schema) -> dict[str, Any] | None:
        """What the model's preprocessing does to data of this canonical ``schema`` (recorded in
        results.json): for a model that adapts through :mod:`fmb.adapt`, its plan (band map, pixel-scale
        resampling, crop/pad, units). ``None`` (default): not described."""
        return None

    def save_weights(self, path: str | Path) -> Path | None:
        """Write this model's weights at ``path`` so that ``--weights PATH`` loads them back (the
        conformance kit's weights round trip and ``fmb retrain`` use it). Returns the path written
        (None: ``path`` itself). Default: a ModelError (see :attr:`can_save_weights`)."""
        raise ModelError(f"model {self.spec.name!r} cannot save its weights")

    @property
    def can_save_weights(self) -> bool:
        """True when the model's class implements :meth:`save_weights`."""
        return type(self).save_weights is not Model.save_weights
