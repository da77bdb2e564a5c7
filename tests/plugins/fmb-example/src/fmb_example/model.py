"""The ``example`` model: fixed random projections, no deep learning.

Image: ``asinh(flux / 0.02)`` averaged to 8 x 8 blocks per band (4 bands -> 256 values),
projected to 32 dimensions. Spectrum: 64 inverse-variance-weighted bins normalised by their
median |value|, projected to 12 dimensions, plus the mean, standard deviation, skewness and
kurtosis of the bins (16 in all). Joint: both, concatenated. A missing modality (no columns,
or an entirely masked spectrum) gives NaN rows.

Weights are the two projection matrices: ``auto``/``none`` draws them from ``projection_seed``
(recorded as kind ``none``: nothing is learned), ``random`` from the run's seed, and a path
loads an ``.npz`` written by :meth:`ExampleModel.save_weights`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import ModelError
from fmb.models.base import Model, WeightsInfo
from fmb.specs import ModelSpec

GRID = 8
BANDS = 4
BINS = 64
PROJECTED = 12
ASINH_SOFTENING = 0.02


def _block_means(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    edges = np.linspace(0, x.shape[axis], n + 1).astype(int)[:-1]
    counts = np.diff(np.append(edges, x.shape[axis]))
    shape = [1] * x.ndim
    shape[axis] = n
    return np.add.reduceat(x, edges, axis=axis) / counts.reshape(shape)


def image_features(images: np.ndarray) -> np.ndarray:
    """``[N, B, H, W]`` -> ``[N, B * 8 * 8]`` block means of an asinh stretch."""
    if images.shape[1] != BANDS or min(images.shape[2:]) < GRID:
        raise ModelError(f"example: expected {BANDS} bands of at least {GRID}x{GRID} pixels, got {images.shape[1:]}")
    x = np.arcsinh(images.astype(np.float64) / ASINH_SOFTENING)
    return _block_means(_block_means(x, GRID, 2), GRID, 3).reshape(len(x), -1)


def spectrum_bins(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[N, L]`` -> ``[N, 64]`` normalised ivar-weighted bins; NaN rows where no pixel is usable."""
    w = np.where(mask | ~np.isfinite(ivar) | (ivar < 0), 0.0, ivar).astype(np.float64)
    f = np.where(w > 0, flux, 0.0).astype(np.float64)
    edges = np.linspace(0, flux.shape[1], BINS + 1).astype(int)[:-1]
    ws = np.add.reduceat(w, edges, axis=1)
    binned = np.add.reduceat(f * w, edges, axis=1) / np.where(ws > 0, ws, 1.0)
    scale = np.median(np.abs(binned), axis=1, keepdims=True)
    out = binned / np.where(scale > 0, scale, 1.0)
    out[ws.sum(axis=1) == 0] = np.nan
    return out


def moments(x: np.ndarray) -> np.ndarray:
    """Mean, standard deviation, skewness and excess kurtosis of each row."""
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    return np.hstack([mu, sd, (z**3).mean(axis=1, keepdims=True), (z**4).mean(axis=1, keepdims=True) - 3])


def projections(seed: int) -> dict[str, np.ndarray]:
    """The two random projection matrices (Gaussian, scaled to preserve norms on average)."""
    rng = np.random.default_rng(seed)
    n_img = BANDS * GRID * GRID
    return {
        "image": rng.normal(0, 1 / np.sqrt(32), (n_img, 32)),
        "spectrum": rng.normal(0, 1 / np.sqrt(PROJECTED), (BINS, PROJECTED)),
    }


class ExampleModel(Model):
    """See the module docstring."""

    def __init__(
        self, spec: ModelSpec, weights: WeightsInfo, options: dict[str, Any], matrices: dict[str, np.ndarray]
    ) -> None:
        super().__init__(spec, weights, options)
        self.matrices = matrices

    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        names = batch.schema.names
        if C.IMAGE in names:
            out["image"] = image_features(C.column_array(batch, C.IMAGE)) @ self.matrices["image"]
        if C.FLUX in names:
            bins = spectrum_bins(
                C.column_array(batch, C.FLUX), C.column_array(batch, C.IVAR), C.column_array(batch, C.MASK, bool)
            )
            out["spectrum"] = np.hstack([bins @ self.matrices["spectrum"], moments(bins)])
        if "image" in out and "spectrum" in out:
            joint = np.hstack([out["image"], out["spectrum"]])
            joint[np.isnan(joint).any(axis=1)] = np.nan
            out["joint"] = joint
        return {k: v.astype(np.float32) for k, v in out.items()}

    def save_weights(self, path: str | Path) -> Path:
        """Write the projection matrices to ``path`` (``.npz``); ``--weights PATH`` loads them."""
        path = Path(path).with_suffix(".npz")
        np.savez(path, **self.matrices)
        return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(
    spec: ModelSpec, weights: str = "auto", device: str = "cpu", options: dict[str, Any] | None = None, seed: int = 0
) -> ExampleModel:
    """Loader named by the spec (``weights``: auto, none, random or a path to an ``.npz``)."""
    options = {**spec.default_options, **(options or {})}
    unknown = sorted(set(options) - {"projection_seed"})
    if unknown:
        raise ModelError(f"model 'example': unknown option(s) {', '.join(unknown)} (valid: projection_seed)")
    if weights in ("auto", "none"):
        pseed = int(options["projection_seed"])
        return ExampleModel(
            spec,
            WeightsInfo(kind="none", location=f"projection_seed={pseed}"),
            {"projection_seed": pseed},
            projections(pseed),
        )
    if weights == "random":
        return ExampleModel(spec, WeightsInfo(kind="random", seed=seed), {}, projections(seed))
    if weights.startswith("hf:"):
        raise ModelError("model 'example' has no weights on the hub; use auto, random or a path to an .npz")
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"model 'example': --weights {weights!r} is not a file")
    from fmb.protocol.weights import check_tensors

    try:
        with np.load(path) as data:  # allow_pickle=False: no code from the file runs
            matrices = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"model 'example': cannot read {path} as .npz ({exc})".splitlines()[0]) from None
    expected = {k: v.shape for k, v in projections(0).items()}
    check_tensors(expected, {k: v.shape for k, v in matrices.items()}, f"model 'example': {path}")  # strict
    return ExampleModel(
        spec, WeightsInfo(kind="path", location=str(path.resolve()), sha256=_sha256(path)), {}, matrices
    )
