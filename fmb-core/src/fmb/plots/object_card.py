"""One object: its image bands, RGB composite and spectrum. The drawing functions here serve both
``fmb show`` (:func:`save_object_card`) and the report gallery (fmb.report.gallery)."""

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


#: Main rest-frame emission lines, VACUUM wavelengths in Angstrom (the canonical grid is vacuum), from the SDSS
#: spectral line table (https://classic.sdss.org/dr6/algorithms/linestable.html); [OII] is the 3727.09/3729.88
#: doublet, drawn at its mean.
REST_LINES = {"[OII]": 3728.48, "Hβ": 4862.68, "[OIII]": 5008.24, "Hα": 6564.61}
SPECTRUM_BINS = 300
STRETCH = "asinh, 1-99.7 percentile"


def _stretch(img: np.ndarray) -> np.ndarray:
    """Asinh stretch between the 1st and 99.7th percentile (:data:`STRETCH`), to [0, 1]; NaN -> 0."""
    lo, hi = np.nanpercentile(img, [1, 99.7]) if np.isfinite(img).any() else (0.0, 1.0)
    soft = max(hi - lo, 1e-12) / 20
    x = np.arcsinh((img - lo) / soft)
    return np.clip(np.nan_to_num(x / max(np.arcsinh((hi - lo) / soft), 1e-12)), 0, 1)


def spectrum_arrays(row: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(wavelength [L] Angstrom, flux [L], ivar [L] (1 where absent), bad [L] bool: mask or ivar <= 0)."""
    names = row.schema.names
    wave = C.wavelength(row)
    wave = (wave[0] if wave.ndim == 2 else wave).astype(np.float64)
    flux = C.column_array(row, C.FLUX)[0].astype(np.float64)
    ivar = C.column_array(row, C.IVAR)[0].astype(np.float64) if C.IVAR in names else np.ones_like(flux)
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
    if C.MASK in names:
        bad |= C.column_array(row, C.MASK, bool)[0]
    return wave, flux, ivar, bad


def bin_spectrum(
    wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, bad: np.ndarray, nbins: int = SPECTRUM_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance weighted mean in ``nbins`` equal-width wavelength bins.

    Returns (centres [nbins] Angstrom, flux [nbins], sigma [nbins] = 1/sqrt(sum ivar), masked [nbins] bool: no
    good pixel in the bin; its flux and sigma are NaN). Weighted mean: sum(ivar f)/sum(ivar), the maximum
    likelihood combination of independent Gaussian pixels.
    """
    edges = np.linspace(wave.min(), wave.max(), nbins + 1)
    idx = np.clip(np.searchsorted(edges, wave, side="right") - 1, 0, nbins - 1)
    w = np.where(bad, 0.0, ivar)
    sw = np.bincount(idx, weights=w, minlength=nbins)
    swf = np.bincount(idx, weights=w * np.where(bad, 0.0, flux), minlength=nbins)
    masked = sw <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(masked, np.nan, swf / np.where(masked, 1, sw))
        sig = np.where(masked, np.nan, 1 / np.sqrt(np.where(masked, 1, sw)))
    return 0.5 * (edges[1:] + edges[:-1]), mean, sig, masked


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``flags`` is True."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def draw_spectrum(
    ax, row: pa.RecordBatch, redshift: float | None = None, nbins: int = SPECTRUM_BINS, small: bool = False
) -> None:
    """The binned spectrum (:func:`bin_spectrum`) with a 1-sigma band, masked wavelength ranges shaded, y-limits
    at the 1st/99th percentile of the binned flux (padded), and :data:`REST_LINES` at (1 + z) x rest where the
    redshift is known and the line falls on the grid."""
    wave, flux, ivar, bad = spectrum_arrays(row)
    x, f, sig, _ = bin_spectrum(wave, flux, ivar, bad, nbins)
    fs = 6.5 if small else 8
    step = x[1] - x[0] if len(x) > 1 else 1.0
    for a, b in _runs(bad):  # shade masked pixel runs (at pixel resolution, merged)
        ax.axvspan(wave[a], wave[b - 1], color="#f4c7c3", lw=0, zorder=0)
    ax.fill_between(x, f - sig, f + sig, color="0.82", lw=0, step="mid")
    ax.step(x, f, where="mid", lw=0.6 if small else 0.8, color="C0")
    fin = f[np.isfinite(f)]
    if fin.size:
        lo, hi = np.percentile(fin, [1, 99])
        pad = 0.2 * (hi - lo + 1e-12)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(wave.min() - step / 2, wave.max() + step / 2)
    if redshift is not None and np.isfinite(redshift):
        for name, rest in REST_LINES.items():
            obs = rest * (1 + redshift)
            if wave.min() <= obs <= wave.max():
                ax.axvline(obs, color="C3", lw=0.6, ls="--", alpha=0.8)
                ax.text(
                    obs,
                    0.98,
                    name,
                    transform=ax.get_xaxis_transform(),
                    fontsize=fs - 0.5,
                    color="C3",
                    ha="center",
                    va="top",
                    bbox={"fc": "white", "ec": "none", "pad": 0.5, "alpha": 0.7},
                )
    unit = (C.field_meta(row.schema.field(C.FLUX), "unit", "") or "arbitrary units").replace("Angstrom", "Å")
    ax.set_xlabel("observed wavelength [Å]", fontsize=fs, labelpad=1)
    ax.set_ylabel(f"flux [{unit}]", fontsize=fs - 1, labelpad=1)
    ax.tick_params(labelsize=fs - 0.5, pad=1)
    ax.set_title(
        f"{nbins} ivar-weighted bins; shaded: masked ({int(bad.sum())} px)"
        + (f"; lines at z = {redshift:.3f}" if redshift is not None and np.isfinite(redshift) else ""),
        fontsize=fs - 0.5,
        loc="left",
        pad=2,
    )


def image_panels(row: pa.RecordBatch) -> list[tuple[str, np.ndarray, bool]]:
    """(title, array, is_rgb) per panel: each band stretched (:data:`STRETCH`), then the RGB composite if any."""
    names = row.schema.names
    out = []
    if C.IMAGE in names:
        img = C.column_array(row, C.IMAGE)[0]
        for band, plane in zip(C.image_bands(row.schema), img):
            out.append((band, _stretch(plane.astype(np.float64)), False))
    if C.RGB in names:
        out.append(("RGB", np.moveaxis(C.column_array(row, C.RGB, np.uint8)[0], 0, -1), True))
    return out


def pixel_scale(row: pa.RecordBatch) -> float | None:
    """Arcsec per pixel from the image metadata; None where unknown."""
    if C.IMAGE not in row.schema.names:
        return None
    try:
        v = float(C.field_meta(row.schema.field(C.IMAGE), "pixel_scale", "nan"))
    except ValueError:
        return None
    return v if np.isfinite(v) and v > 0 else None


def draw_images(axes, row: pa.RecordBatch, small: bool = False) -> None:
    """One panel per band and the RGB (``axes``: at least len(image_panels(row))), north up as stored
    (origin lower), with a scale bar on the first panel where the pixel scale is known."""
    fs = 6.5 if small else 8
    scale = pixel_scale(row)
    for ax, (title, arr, rgb) in zip(axes, image_panels(row)):
        ax.imshow(arr, origin="lower", cmap=None if rgb else "gray", interpolation="nearest")
        ax.set_title(title, fontsize=fs, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        if ax is axes[0] and scale:
            h, w = arr.shape[:2]
            arcsec = _nice(0.3 * w * scale)
            px = arcsec / scale
            ax.plot([0.06 * w, 0.06 * w + px], [0.08 * h] * 2, color="yellow", lw=1.5)
            ax.text(
                0.06 * w + px / 2, 0.12 * h, f'{arcsec:g}"', color="yellow", fontsize=fs - 0.5, ha="center", va="bottom"
            )


def _nice(x: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``x`` (a round scale-bar length)."""
    k = 10 ** np.floor(np.log10(x))
    return float(max(m * k for m in (1, 2, 5) if m * k <= x))


def redshift_of(row: pa.RecordBatch) -> float | None:
    if "redshift" not in row.schema.names:
        return None
    v = row.column("redshift")[0].as_py()
    return float(v) if v is not None else None


def save_object_card(row: pa.RecordBatch, path: str | Path, title: str = "") -> Path:
    """Write a PNG of one object (bands, RGB, binned spectrum with lines at its redshift); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schema = row.schema
    panels = image_panels(row)
    has_image, has_spec = bool(panels), C.FLUX in schema.names
    ncols = max(len(panels), 1)
    fig = plt.figure(figsize=(max(2.4 * ncols, 8), 5.6 if has_image and has_spec else 3.0), dpi=100)
    grid = fig.add_gridspec(2 if has_image and has_spec else 1, ncols)
    if has_image:
        draw_images([fig.add_subplot(grid[0, i]) for i in range(len(panels))], row)
    if has_spec:
        draw_spectrum(fig.add_subplot(grid[-1, :]), row, redshift_of(row))
    sub = f"stretch: {STRETCH}" if has_image else ""
    fig.suptitle((title or _default_title(row)) + (f"\n{sub}" if sub else ""), fontsize=9)
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
    z = redshift_of(row)
    if z is not None:
        parts.append(f"z = {z:.3f}")
    if C.RA in names and C.DEC in names and row.column(C.RA)[0].is_valid and row.column(C.DEC)[0].is_valid:
        parts.append(f"RA {row.column(C.RA)[0].as_py():.5f}°, Dec {row.column(C.DEC)[0].as_py():+.5f}°")
    return ", ".join(parts)
