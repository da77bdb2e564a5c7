"""One object on one page: its image bands, RGB composite and spectrum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import DataError
from fmb.io import atomic_path


def find_object(dataset, object_id: str | None = None, index: int | None = None) -> pa.RecordBatch:
    """The one-row batch of ``object_id`` (compared as text) or of the ``index``-th object.

    Only that row is read and validated (ids are looked up in the id column alone), so a bad
    value in another object never stops showing this one.
    """
    n = len(dataset)
    if object_id is not None:
        ids = dataset.read_columns([C.OBJECT_ID]).column(C.OBJECT_ID).to_pylist()
        where = [i for i, v in enumerate(ids) if str(v) == str(object_id)]
        if not where:
            raise DataError(f"no object with object_id {object_id}")
        index = where[0]
    if index is None or not 0 <= index < n:
        raise DataError(f"no object with index {index} (only {n} objects)")
    return next(iter(dataset.iter_batches(1, index, index + 1)))


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [1, 99.7])
    soft = max(hi - lo, 1e-12) / 20
    x = np.arcsinh((img - lo) / soft)
    return np.clip(x / max(np.arcsinh((hi - lo) / soft), 1e-12), 0, 1)


def save_object_card(row: pa.RecordBatch, path: str | Path, title: str = "") -> Path:
    """Write a PNG of one object (bands, RGB, spectrum with 1-sigma band); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schema = row.schema
    has_image, has_spec = C.IMAGE in schema.names, C.FLUX in schema.names
    bands = C.image_bands(schema) if has_image else []
    ncols = max(len(bands) + (C.RGB in schema.names), 1)
    fig = plt.figure(figsize=(2.4 * ncols, 5.6 if has_image and has_spec else 3.0), dpi=100)
    grid = fig.add_gridspec(2 if has_image and has_spec else 1, ncols)
    if has_image:
        img = C.column_array(row, C.IMAGE)[0]
        scale = C.field_meta(schema.field(C.IMAGE), "pixel_scale", "?")
        unit = C.field_meta(schema.field(C.IMAGE), "unit", "")
        for i, band in enumerate(bands):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(_stretch(img[i]), origin="lower", cmap="gray", interpolation="nearest")
            ax.set_title(f"{band} (peak {img[i].max():.3g} {unit})", fontsize=8)
            ax.set_xlabel(f'{scale}"/px', fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        if C.RGB in schema.names:
            ax = fig.add_subplot(grid[0, len(bands)])
            ax.imshow(np.moveaxis(C.column_array(row, C.RGB, np.uint8)[0], 0, -1), origin="lower")
            ax.set_title("RGB composite", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    if has_spec:
        ax = fig.add_subplot(grid[-1, :])
        wave = C.wavelength(row)
        wave = wave[0] if wave.ndim == 2 else wave
        flux = C.column_array(row, C.FLUX)[0].astype(float)
        ivar = C.column_array(row, C.IVAR)[0].astype(float)
        bad = C.column_array(row, C.MASK, bool)[0] | (ivar <= 0)
        f = np.where(bad, np.nan, flux)
        sig = np.where(bad, np.nan, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)))
        ax.fill_between(wave, f - sig, f + sig, color="0.8", lw=0, label="1σ")
        ax.plot(wave, f, lw=0.5, color="C0", label="flux")
        ax.set_xlabel("observed wavelength [Å]")
        ax.set_ylabel(f"flux [{C.field_meta(schema.field(C.FLUX), 'unit', 'arbitrary')}]", fontsize=8)
        finite = f[np.isfinite(f)]
        if finite.size:
            lo, hi = np.percentile(finite, [0.5, 99.5])
            pad = 0.15 * (hi - lo + 1e-12)
            ax.set_ylim(lo - pad, hi + pad)
        if bad.any():
            ax.text(0.01, 0.95, f"{int(bad.sum())} masked pixels", transform=ax.transAxes, fontsize=7, va="top")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title or _default_title(row), fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def _default_title(row: pa.RecordBatch) -> str:
    parts = [f"object {row.column(C.OBJECT_ID)[0].as_py()}"]
    names = row.schema.names
    if C.ANOMALY_CLASS in names:
        parts.append(f"class {row.column(C.ANOMALY_CLASS)[0].as_py()}")
    if "redshift" in names:
        parts.append(f"z = {row.column('redshift')[0].as_py():.3f}")
    return ", ".join(parts)
