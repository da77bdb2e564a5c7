"""Adapt canonical images to a model's :class:`~fmb.contracts.ImageContract`, record it, warn outside the domain.

Three steps, all recorded (:func:`plan_image` -> the dict stored in results.json):

1. **Bands** (:func:`map_bands`): each contract band takes the data band of the same name, else the data
   band nearest in effective wavelength (names are case-sensitive: Euclid ``Y`` is not HSC ``y``).
2. **Pixel scale** (:func:`resample_to_scale`): stamps are resampled from the data's arcsec/px to the
   contract's, then centre-cropped or zero-padded to the contract's stamp size. Never a resize to a size:
   an object keeps its angular size, as the model saw objects in training.
3. **Units**: the data's flux unit is recorded next to the contract's; a mismatch is a domain warning.

:func:`domain_warnings` lists, in one line each, where a data set lies far from a model's training domain
(pixel-scale ratio, stamp coverage, band wavelengths, units, spectral coverage), so that no number is read
without its caveat.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.contracts import ImageContract, InputContract
from fmb.data import canonical as C
from fmb.errors import DataError

#: Effective (mean) wavelengths in nm of the bands canonical datasets name, approximately the
#: ``lambda_mean`` of the SVO Filter Profile Service (http://svo2.cab.inta-csic.es/theory/fps/):
#: CTIO/DECam g r i z (Legacy Survey), Subaru/HSC y, Euclid VIS and NISP Y J H. A dataset may give its own
#: as the image field's ``wavelengths`` metadata (nm, comma-separated, one per band).
KNOWN_BAND_NM: dict[str, float] = {
    "g": 482.7,
    "r": 643.2,
    "i": 782.6,
    "z": 917.9,
    "y": 977.5,
    "VIS": 718.0,
    "Y": 1081.0,
    "J": 1367.0,
    "H": 1771.0,
}

#: A resampling by more than this factor either way is outside the training domain (warned).
SCALE_RATIO_LIMIT = 1.5
#: A band fed from a data band whose wavelength differs by more than this fraction is warned.
WAVELENGTH_TOLERANCE = 0.2
#: Warned when the data stamp covers less than this fraction of the model input's side.
COVERAGE_LIMIT = 0.9
#: Warned when the data spectrum covers less than this fraction of the model's wavelength range.
SPECTRAL_COVERAGE_LIMIT = 0.9


def band_wavelengths(bands: list[str], schema: pa.Schema | None = None) -> list[float | None]:
    """Effective wavelength (nm) of each band: the image field's ``wavelengths`` metadata, else
    :data:`KNOWN_BAND_NM`, else ``None``. Raises :class:`DataError` for malformed metadata."""
    if schema is not None and C.IMAGE in schema.names:
        meta = C.field_meta(schema.field(C.IMAGE), "wavelengths")
        if meta:
            try:
                values = [float(v) for v in meta.split(",")]
            except ValueError:
                raise DataError(
                    f"field 'image': metadata wavelengths={meta!r} is not comma-separated numbers"
                ) from None
            if len(values) != len(bands) or not all(v > 0 for v in values):
                raise DataError(
                    f"field 'image': metadata wavelengths={meta!r} needs one positive value (nm) "
                    f"per band ({len(bands)})"
                )
            return values
    return [KNOWN_BAND_NM.get(b) for b in bands]


def map_bands(data_bands: list[str], data_nm: list[float | None], contract: ImageContract) -> list[dict[str, Any]]:
    """For each contract band (in contract order): the data band feeding it.

    Returns dicts ``{"band", "wavelength_nm", "from", "index", "from_wavelength_nm", "match"}`` with
    ``match`` = ``"name"`` or ``"wavelength"``. Raises :class:`DataError` when a band matches by neither.
    """
    out = []
    for band in contract.bands:
        if band.name in data_bands:
            i, match = data_bands.index(band.name), "name"
        else:
            known = [(abs(nm - band.wavelength_nm), j) for j, nm in enumerate(data_nm) if nm is not None]
            if not known:
                raise DataError(
                    f"field 'image': bands {','.join(data_bands)} have no band {band.name!r} and no known "
                    "wavelengths to map by (give the image field a 'wavelengths' metadata in nm)"
                )
            i, match = min(known)[1], "wavelength"
        out.append(
            {
                "band": band.name,
                "wavelength_nm": band.wavelength_nm,
                "from": data_bands[i],
                "index": i,
                "from_wavelength_nm": data_nm[i],
                "match": match,
            }
        )
    return out


def _axis_plan(n_in: int, zoom: float, n_out: int) -> dict[str, Any]:
    content = n_in * zoom
    return {
        "in": n_in,
        "content": round(content, 3),
        "crop": round(max(0.0, content - n_out), 3),
        "pad": round(max(0.0, n_out - content), 3),
    }


def resample_plan(
    shape_hw: tuple[int, int],
    pixel_scale_in: float,
    pixel_scale_out: float,
    stamp_size: int,
    flux_conserving: bool = True,
) -> dict[str, Any]:
    """What :func:`resample_to_scale` does to ``[H, W]`` stamps (no data needed): the record it returns."""
    zoom = pixel_scale_in / pixel_scale_out
    identity = math.isclose(zoom, 1.0, rel_tol=1e-6)
    return {
        "pixel_scale_in": pixel_scale_in,
        "pixel_scale_out": pixel_scale_out,
        "zoom": round(zoom, 6),
        "stamp_out": stamp_size,
        "rows": _axis_plan(shape_hw[0], zoom, stamp_size),
        "cols": _axis_plan(shape_hw[1], zoom, stamp_size),
        "method": (
            "integer centre crop/pad (no interpolation)"
            if identity
            else "scipy.ndimage.affine_transform order=1 (bilinear), centre to centre"
            + (", Gaussian anti-alias sigma=(1/zoom-1)/2 px" if zoom < 1 else "")
        ),
        "conserves": "flux" if flux_conserving else "surface brightness",
        "flux_factor": 1.0 if identity or not flux_conserving else round(1.0 / zoom**2, 6),
    }


def _centre_crop_pad(x: np.ndarray, size: int) -> np.ndarray:
    """Integer centre crop / zero pad of the last two axes, with torchvision ``CenterCrop``'s rounding
    (crop offset ``int(round((n - size) / 2))``; pad ``(size - n) // 2`` before)."""
    for axis in (-2, -1):
        n = x.shape[axis]
        if n >= size:
            start = int(round((n - size) / 2.0))
            x = np.take(x, np.arange(start, start + size), axis=axis)
        else:
            before = (size - n) // 2
            widths = [(0, 0)] * x.ndim
            widths[axis] = (before, size - n - before)
            x = np.pad(x, widths)
    return x


def resample_to_scale(
    images: np.ndarray, pixel_scale_in: float, pixel_scale_out: float, stamp_size: int, flux_conserving: bool = True
) -> tuple[np.ndarray, dict[str, Any]]:
    """Resample ``[B, C, H, W]`` stamps from ``pixel_scale_in`` to ``pixel_scale_out`` arcsec/px, then centre
    crop or zero-pad to ``stamp_size`` x ``stamp_size``. Returns ``(float32 [B, C, S, S], record)``.

    The array centre (``(n - 1) / 2`` in pixel-centre coordinates) maps to the output centre, so an object
    centred in the cutout stays centred. Interpolation is bilinear (``order=1``: no spline overshoot, so a
    positive image stays positive); when shrinking (``zoom < 1``) a Gaussian of sigma ``(1/zoom - 1) / 2``
    input pixels is applied first against aliasing (scikit-image's ``rescale`` convention). Both use
    :mod:`scipy.ndimage` (a kept library). With ``flux_conserving`` (default) values are multiplied by
    ``(pixel_scale_out / pixel_scale_in) ** 2``: a canonical pixel holds flux (e.g. nanomaggies per pixel),
    and a model trained on flux per 0.262" pixel must see the flux of a 0.262" pixel; interpolation alone
    would conserve surface brightness per *input* pixel. Same scale: an exact integer crop/pad.
    Non-finite pixels must be replaced by the caller first (they would spread). Raises :class:`ValueError`
    for a bad shape or scale.
    """
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"resample_to_scale: images must be [B, C, H, W], got shape {x.shape}")
    if not (pixel_scale_in > 0 and pixel_scale_out > 0) or stamp_size <= 0:
        raise ValueError(
            f"resample_to_scale: scales {pixel_scale_in}, {pixel_scale_out} and stamp size "
            f"{stamp_size} must be positive"
        )
    record = resample_plan(x.shape[-2:], pixel_scale_in, pixel_scale_out, stamp_size, flux_conserving)
    zoom = pixel_scale_in / pixel_scale_out
    if math.isclose(zoom, 1.0, rel_tol=1e-6):
        return np.ascontiguousarray(_centre_crop_pad(x, stamp_size)), record
    from scipy import ndimage  # scipy is a core dependency; imported here to keep `fmb --help` fast

    b, c, h, w = x.shape
    sigma = (1.0 / zoom - 1.0) / 2.0 if zoom < 1 else 0.0
    # zeros around the stamp (what lies outside a cutout is taken as empty sky), wide enough that neither the
    # anti-alias blur nor the bilinear ramp past the edge pixels falls off the array: flux is kept to the edge
    pad = int(math.ceil(4.0 * sigma)) + 2
    flat = np.pad(x.reshape(b * c, h, w).astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    if sigma > 0:
        flat = ndimage.gaussian_filter(flat, sigma=(0, sigma, sigma), mode="constant", cval=0.0)
    # output index o -> input coordinate (o - (S-1)/2) / zoom + (n-1)/2, shifted by the padding
    offset = [0.0] + [pad + (n - 1) / 2.0 - (stamp_size - 1) / 2.0 / zoom for n in (h, w)]
    out = ndimage.affine_transform(
        flat,
        [1.0, 1.0 / zoom, 1.0 / zoom],
        offset=offset,
        output_shape=(b * c, stamp_size, stamp_size),
        order=1,
        mode="constant",
        cval=0.0,
    )
    out *= record["flux_factor"]
    return out.reshape(b, c, stamp_size, stamp_size).astype(np.float32), record


def image_meta(schema: pa.Schema) -> tuple[list[str], float | None, str | None, tuple[int, ...]]:
    """``(bands, pixel_scale or None, unit or None, shape [C, H, W])`` of the image field.

    Raises :class:`DataError` for a pixel_scale that is not a positive number.
    """
    fld = schema.field(C.IMAGE)
    raw = C.field_meta(fld, "pixel_scale")
    scale = None
    if raw not in (None, ""):
        try:
            scale = float(raw)
        except ValueError:
            scale = -1.0
        if not (scale > 0 and math.isfinite(scale)):
            raise DataError(f"field 'image': metadata pixel_scale={raw!r} is not a positive number (arcsec/px)")
    return C.image_bands(schema), scale, C.field_meta(fld, "unit"), C.field_shape(fld)


def plan_image(schema: pa.Schema, contract: ImageContract) -> dict[str, Any]:
    """The adaptation :func:`adapt_images` applies to this schema's images (recorded in results.json).

    Without a ``pixel_scale`` in the data, the stamps are taken to be at the contract's scale (warned by
    :func:`domain_warnings`).
    """
    bands, scale, unit, shape = image_meta(schema)
    assumed = scale is None
    scale_in = contract.pixel_scale_arcsec if assumed else scale
    return {
        "band_map": map_bands(bands, band_wavelengths(bands, schema), contract),
        "resample": resample_plan(tuple(shape[-2:]), scale_in, contract.pixel_scale_arcsec, contract.stamp_size),
        "pixel_scale_assumed": assumed,
        "unit_in": unit,
        "unit_out": contract.flux_unit,
    }


def adapt_images(images: np.ndarray, schema: pa.Schema, contract: ImageContract) -> tuple[np.ndarray, dict[str, Any]]:
    """Canonical ``[B, C_data, H, W]`` images -> ``[B, C_contract, S, S]`` at the contract's bands, pixel scale
    and stamp size (non-finite pixels count as 0). Returns the array and :func:`plan_image`'s record."""
    plan = plan_image(schema, contract)
    x = np.nan_to_num(np.asarray(images, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = x[:, [m["index"] for m in plan["band_map"]]]
    r = plan["resample"]
    out, _ = resample_to_scale(x, r["pixel_scale_in"], r["pixel_scale_out"], contract.stamp_size)
    return out, plan


def _fmt_nm(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f} nm"


def image_warnings(schema: pa.Schema, contract: ImageContract) -> list[str]:
    """Domain warnings for images (see :func:`domain_warnings`)."""
    bands, scale, unit, shape = image_meta(schema)
    out = []
    want = contract.pixel_scale_arcsec
    if scale is None:
        out.append(f"images carry no pixel_scale: taken to be the model's {want:g}\"/px")
        scale = want
    ratio = scale / want
    if ratio > SCALE_RATIO_LIMIT or ratio < 1 / SCALE_RATIO_LIMIT:
        out.append(
            f'pixel scale {scale:g}"/px vs the model\'s {want:g}"/px (ratio {ratio:.3g}): resolution '
            "and noise differ from training"
        )
    side = contract.stamp_size * want
    for axis, n in (("height", shape[-2]), ("width", shape[-1])):
        frac = n * scale / side
        if frac < COVERAGE_LIMIT:
            out.append(
                f'stamps span {n * scale:.3g}" ({axis}), the model\'s input {side:.3g}": '
                f"they cover {100 * frac:.0f}% of its side"
            )
            break
    try:
        bmap = map_bands(bands, band_wavelengths(bands, schema), contract)
    except DataError as exc:
        return [*out, str(exc)]
    for m in bmap:
        d, w = m["from_wavelength_nm"], m["wavelength_nm"]
        if m["match"] == "wavelength" and abs(d - w) > WAVELENGTH_TOLERANCE * w:
            out.append(f"band {m['band']} ({_fmt_nm(w)}) fed from {m['from']} ({_fmt_nm(d)})")
    if unit is not None and unit != contract.flux_unit:
        out.append(f"image unit {unit!r}, the model was trained on {contract.flux_unit!r}")
    return out


def domain_warnings(schema: pa.Schema, contract: InputContract | None) -> list[str]:
    """One line per way the data set (its canonical ``schema``) lies outside the model's training domain:
    pixel-scale ratio beyond x1.5, stamps covering < 90% of the model input, a band fed from one > 20% away
    in wavelength, another flux unit, spectra covering < 90% of the model's range. Empty without a contract.
    """
    if contract is None:
        return []
    out: list[str] = []
    if contract.image is not None and C.IMAGE in schema.names:
        out += [f"image: {w}" for w in image_warnings(schema, contract.image)]
    spec = contract.spectrum
    if spec is not None and C.FLUX in schema.names and C.WAVELENGTH not in schema.names:
        fld = schema.field(C.FLUX)
        start, step = C.field_meta(fld, "wavelength_start"), C.field_meta(fld, "wavelength_step")
        if start is not None and step is not None:
            lo = float(start)
            hi = lo + float(step) * (C.field_shape(fld)[0] - 1)
            cover = (min(hi, spec.wavelength_max_aa) - max(lo, spec.wavelength_min_aa)) / (
                spec.wavelength_max_aa - spec.wavelength_min_aa
            )
            if cover < SPECTRAL_COVERAGE_LIMIT:
                out.append(
                    f"spectrum: {lo:.0f}-{hi:.0f} A covers {100 * max(cover, 0):.0f}% of the model's "
                    f"{spec.wavelength_min_aa:.0f}-{spec.wavelength_max_aa:.0f} A"
                )
    return out
