"""The FMB model: canonical batches -> AstroCLIP ``image``, ``spectrum`` and ``joint`` embeddings.

``image`` and ``spectrum`` are the heads' outputs as upstream returns them (unnormalised).
``joint`` is the unit vector along ``image/|image| + spectrum/|spectrum|`` (the normalised mean of
the two unit vectors); it is NaN when either modality is missing. Inputs: see :mod:`preprocess`.
Options: ``size`` (official | small), ``path`` (a local checkpoint for ``--weights auto``),
``repo`` and ``file`` (the hub source for ``auto``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from fmb.data import canonical as C
from fmb.errors import ModelError
from fmb.models.base import Model, WeightsInfo
from fmb.specs import ModelSpec
from fmb_astroclip.network import AstroClip
from fmb_astroclip.preprocess import image_inputs, image_plan, spectrum_inputs
from fmb_astroclip.weights import OFFICIAL_FILE, resolve, save_checkpoint

PREPROCESS_VERSION = 2  # 2: contract adaptation (native 0.262"/px scale, g,r,z by name/wavelength, no transpose)
JOINT = "normalised mean of the unit image and spectrum vectors"
OPTIONS = ("size", "path", "repo", "file")


class AstroClipModel(Model):
    """See the module docstring."""

    def __init__(
        self,
        spec: ModelSpec,
        weights: WeightsInfo,
        options: dict[str, Any],
        net: AstroClip,
        device: str = "cpu",
        parts: str = "full",
    ) -> None:
        super().__init__(spec, weights, options)
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.parts = parts

    @property
    def outputs(self) -> dict[str, int]:
        d = self.net.cfg.embed_dim
        return {k: d for k in self.spec.outputs}

    def settings(self) -> dict[str, Any]:
        return {
            "size": self.net.cfg.size,
            "architecture": self.net.cfg.to_dict(),
            "weights_loaded": self.parts,
            "preprocess": PREPROCESS_VERSION,
            "joint": JOINT,
        }

    def input_adaptation(self, schema: pa.Schema) -> dict[str, Any] | None:
        """The image adaptation (band map, pixel-scale resampling, crop/pad, units) for this schema."""
        return {"image": image_plan(schema, self.net.cfg.image_size)} if C.IMAGE in schema.names else None

    def save_weights(self, path: str | Path) -> Path:
        """Write ``path/model.safetensors`` + ``config.json``; ``--weights path`` loads them back."""
        return save_checkpoint(self.net, path, {"saved_from": self.weights.to_dict()})

    @torch.inference_mode()
    def _encode(self, encoder: torch.nn.Module, x: torch.Tensor, ok: np.ndarray) -> np.ndarray:
        from fmb.protocol.accel import to_device

        out = np.full((len(ok), self.net.cfg.embed_dim), np.nan, np.float32)
        if ok.any():
            rows = x if ok.all() else x[torch.from_numpy(np.flatnonzero(ok))]
            out[ok] = encoder(to_device(rows, self.device)).float().cpu().numpy()
        return out

    def prepare(self, batch: pa.RecordBatch) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
        """Host-side inputs (see :mod:`preprocess`): ``{"image": (x, ok), "spectrum": (x, ok)}`` for the
        modalities the batch has (CPU tensors; the embed stage's loader runs this ahead of the forward pass)."""
        names = batch.schema.names
        inputs: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
        if C.IMAGE in names:
            inputs["image"] = image_inputs(batch, self.net.cfg.image_size)
        if all(c in names for c in C.MODALITY_COLUMNS["spectrum"]):
            inputs["spectrum"] = spectrum_inputs(batch)
        return inputs

    def embed_prepared(self, prepared: dict[str, tuple[torch.Tensor, np.ndarray]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "image" in prepared:
            out["image"] = self._encode(self.net.image_encoder, *prepared["image"])
        if "spectrum" in prepared:
            out["spectrum"] = self._encode(self.net.spectrum_encoder, *prepared["spectrum"])
        if "image" in out and "spectrum" in out:
            out["joint"] = joint_embedding(out["image"], out["spectrum"])
        return out

    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        return self.embed_prepared(self.prepare(batch))


def joint_embedding(image: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Unit vector along the sum of the two unit vectors (NaN rows stay NaN)."""
    a = F.normalize(torch.from_numpy(image), dim=-1)
    b = F.normalize(torch.from_numpy(spectrum), dim=-1)
    return F.normalize(a + b, dim=-1).numpy().astype(np.float32)


def load_model(
    spec: ModelSpec, weights: str = "auto", device: str = "cpu", options: dict[str, Any] | None = None, seed: int = 0
) -> AstroClipModel:
    """Loader named by the spec."""
    opts = {**spec.default_options, **(options or {})}
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise ModelError(f"model {spec.name!r}: unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    size = str(opts["size"]) if "size" in opts else None
    repo = str(opts["repo"]) if "repo" in opts else None
    loaded = resolve(
        weights, size, seed, path=opts.get("path"), repo=repo, filename=str(opts.get("file", OFFICIAL_FILE))
    )
    return AstroClipModel(spec, loaded.weights, opts, loaded.net, device, loaded.parts)
