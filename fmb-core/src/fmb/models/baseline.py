"""The ``baseline`` model: fixed, non-learned features (the floor every model must beat).

Image: ``asinh(flux / 0.02 nmgy)`` per band, averaged in blocks to 16 x 16 (4 x 16 x 16 = 1024
values), so the shape and colours survive but pixel noise averages down.
Spectrum: 128 inverse-variance-weighted bins of the flux (masked pixels get no weight),
divided by the median absolute binned flux so that brightness drops out and shape stays.
Joint: the two concatenated (NaN rows where either is missing). No weights; ``--weights`` other
than auto/none is an error.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.builtin.models import SPECTRUM_DIM
from fmb.data import canonical as C
from fmb.errors import ModelError
from fmb.models.base import Model, WeightsInfo
from fmb.specs import ModelSpec

IMAGE_GRID = 16
ASINH_SOFTENING = 0.02  # nanomaggies


def image_features(images: np.ndarray, grid: int = IMAGE_GRID) -> np.ndarray:
    """``[N, B, H, W]`` -> ``[N, B * grid * grid]`` block means of an asinh stretch."""
    n, b, h, w = images.shape
    if h % grid or w % grid:
        raise ModelError(f"baseline: image {h}x{w} is not divisible into a {grid}x{grid} grid")
    x = np.arcsinh(images.astype(np.float32) / ASINH_SOFTENING)
    return x.reshape(n, b, grid, h // grid, grid, w // grid).mean(axis=(3, 5)).reshape(n, -1)


def spectrum_features(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, nbins: int = SPECTRUM_DIM) -> np.ndarray:
    """``[N, L]`` -> ``[N, nbins]`` ivar-weighted bins normalised by their median |value|.

    Rows with no usable pixel are NaN (missing modality).
    """
    length = flux.shape[1]
    w = np.where(mask | ~np.isfinite(ivar) | (ivar < 0), 0.0, ivar).astype(np.float64)
    f = np.where(w > 0, flux, 0.0).astype(np.float64)
    edges = np.linspace(0, length, nbins + 1).astype(int)
    fw = np.add.reduceat(f * w, edges[:-1], axis=1)
    ws = np.add.reduceat(w, edges[:-1], axis=1)
    binned = np.where(ws > 0, fw / np.where(ws > 0, ws, 1.0), 0.0)
    scale = np.median(np.abs(binned), axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, np.abs(binned).max(axis=1, keepdims=True))
    out = binned / np.where(scale > 0, scale, 1.0)
    out[ws.sum(axis=1) == 0] = np.nan
    return out.astype(np.float32)


class FeatureModel(Model):
    """A model of fixed per-object features (no weights, no options): the one owner of the three-output
    ``embed`` of ``baseline`` and ``baseline-strong``. Subclasses set :attr:`label` and implement
    :meth:`image_features` ``[N, B, H, W] -> [N, D_image]`` and :meth:`spectrum_features` (flux, ivar, mask
    ``[N, L]`` and the wavelength grid ``[L]`` or ``[N, L]`` -> ``[N, D_spectrum]``, NaN rows where no pixel
    is usable). ``joint`` is the two concatenated, a NaN row where either is missing. Every output's width
    is checked against the spec (ModelError naming the model). A subclass may append columns computed from
    both modalities to ``joint`` (:meth:`joint_extra`)."""

    label = "feature model"
    #: appended to the width error: what the input must look like
    width_hint = ""

    @abstractmethod
    def image_features(self, images: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def spectrum_features(
        self, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, wave: np.ndarray
    ) -> np.ndarray: ...

    def joint_extra(self, batch: pa.RecordBatch, image: np.ndarray, spectrum: np.ndarray) -> np.ndarray | None:
        """``[N, K]`` columns appended to ``joint``, from the batch and the two outputs (default: none)."""
        return None

    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        names = batch.schema.names
        if C.IMAGE in names:
            out["image"] = self.image_features(C.column_array(batch, C.IMAGE))
        if C.FLUX in names:
            out["spectrum"] = self.spectrum_features(
                C.column_array(batch, C.FLUX),
                C.column_array(batch, C.IVAR),
                C.column_array(batch, C.MASK, bool),
                C.wavelength(batch),
            )
        if "image" in out and "spectrum" in out:
            extra = self.joint_extra(batch, out["image"], out["spectrum"])
            out["joint"] = np.hstack([out["image"], out["spectrum"], *([] if extra is None else [extra])])
            out["joint"][np.isnan(out["joint"]).any(axis=1)] = np.nan  # a missing modality: the whole row
        for key, dim in self.spec.outputs.items():
            if key in out and out[key].shape[1] != dim:
                raise ModelError(
                    f"{self.label}: {key} embedding has {out[key].shape[1]} dims, expected {dim}{self.width_hint}"
                )
        return out


def load_feature_model(cls: type[FeatureModel], spec: ModelSpec, weights: str, options: dict[str, Any] | None):
    """``cls(spec)`` after refusing weights other than auto/none/random and any option (ModelError naming
    the model): fixed-feature models have neither."""
    if weights not in ("auto", "none", "random"):
        raise ModelError(f"model {spec.name!r} has no weights to load (got --weights {weights!r})")
    if options:
        raise ModelError(f"model {spec.name!r} takes no options (got {sorted(options)})")
    return cls(spec, WeightsInfo(kind="none"), {})


class BaselineModel(FeatureModel):
    """See the module docstring."""

    label = "baseline"
    width_hint = " (images must be 4 bands, H and W multiples of 16)"

    def image_features(self, images: np.ndarray) -> np.ndarray:
        return image_features(images)

    def spectrum_features(self, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, wave: np.ndarray) -> np.ndarray:
        return spectrum_features(flux, ivar, mask)


def load_model(
    spec: ModelSpec, weights: str = "auto", device: str = "cpu", options: dict[str, Any] | None = None, seed: int = 0
) -> BaselineModel:
    """Loader named by the spec. The baseline has no learned weights."""
    return load_feature_model(BaselineModel, spec, weights, options)
