"""Canonical image bands -> AION image-codec band slots, the target survey and its pixel scale.

AION-1 (polymathic-aion 0.0.2) reads two image surveys, each with its own modality, token key,
flux unit and pixel grid (Parker et al. 2025, arXiv:2510.17960, sect. 3; band slots and clamp
limits: ``aion/codecs/preprocessing/band_to_index.py``):

=========  ===========================  =============  =====================  ==============
survey     codec slots                  modality       flux unit              pixel scale
=========  ===========================  =============  =====================  ==============
``legacy`` DES-G, DES-R, DES-I, DES-Z   ``tok_image``  nanomaggies (ZP 22.5)  0.262 "/px
``hsc``    HSC-G, HSC-R, HSC-I, HSC-Z,  ``tok_image_   HSC coadd (ZP 27)      0.168 "/px
           HSC-Y                        hsc``
=========  ===========================  =============  =====================  ==============

Which band fills which slot (``--model aion:bands=auto|legacy|hsc``):

* **Native bands** go to their own slot: ``g``, ``r``, ``i``, ``z`` (and ``y`` for HSC), or the codec
  names themselves (``DES-G`` ... ``HSC-Y``, any case). A Legacy Survey g,r,i,z cutout at 0.262 "/px
  is therefore fed exactly as AION was trained.
* **Euclid** VIS/Y/J/H (AION has no Euclid modality) keep their wavelength order in the slots:
  ``hsc`` VIS->HSC-R, Y->HSC-I, J->HSC-Z, H->HSC-Y (HSC-G empty); ``legacy`` VIS->DES-G, Y->DES-R,
  J->DES-I, H->DES-Z.
* ``auto`` (default) picks the survey from the image: ``DES-*`` names -> legacy, ``HSC-*`` names or
  a ``y`` band -> hsc, other g/r/i/z images -> the survey whose pixel scale is nearer the image's,
  Euclid bands -> hsc (HSC is the deep sub-arcsecond survey closest to Euclid; upstream FMB's
  learned adapter also targets HSC).

Flux conversion: canonical images are nanomaggies, which the Legacy Survey slots expect (factor 1);
HSC slots expect HSC coadd units, so nanomaggies are multiplied by ``10 ** ((27 - 22.5) / 2.5) =
63.0957``; the codec's ``RescaleToLegacySurvey`` divides that back out before its arcsinh range
compression. The third choice, ``bands=adapter`` with ``adapter=PATH``, replaces the fixed mapping
by a learned Euclid->HSC U-Net (see :mod:`fmb_aion.adapter` and ``fmb retrain aion``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fmb.errors import UsageError

EUCLID_BANDS = ("VIS", "Y", "J", "H")
HSC_BANDS = ("HSC-G", "HSC-R", "HSC-I", "HSC-Z", "HSC-Y")
DES_BANDS = ("DES-G", "DES-R", "DES-I", "DES-Z")
NMGY_TO_HSC = 10.0 ** ((27.0 - 22.5) / 2.5)  # 63.0957...
#: arcsec per pixel of the training cutouts: Legacy Survey DR10 (Dey et al. 2019) and HSC PDR3 coadds
PIXEL_SCALE = {"legacy": 0.262, "hsc": 0.168}
OPTICAL = ("g", "r", "i", "z", "y")
MAPPING_NAMES = ("auto", "hsc", "legacy", "adapter")


@dataclass(frozen=True)
class BandMapping:
    """One target survey: its codec slots, the flux factor from nanomaggies, modality and pixel scale."""

    name: str
    slots: dict[str, str]  # Euclid band -> codec slot
    flux_scale: float
    modality: str  # aion.modalities class name
    token_key: str
    pixel_scale: float

    @property
    def prefix(self) -> str:
        return "HSC-" if self.name in ("hsc", "adapter") else "DES-"

    def slot(self, band: str) -> str | None:
        """The codec slot of one canonical band name, or None when this survey has none."""
        if band in self.slots:
            return self.slots[band]
        upper = band.upper()
        if upper.startswith(("HSC-", "DES-")):
            return upper if upper.startswith(self.prefix) and upper in (HSC_BANDS + DES_BANDS) else None
        if band in OPTICAL:
            name = self.prefix + band.upper()
            return name if name in (HSC_BANDS + DES_BANDS) else None
        return None

    def codec_bands(self, bands: list[str] | tuple[str, ...]) -> list[str]:
        """Codec band names for the image's own band order; unknown, mixed or repeated bands are an error."""
        missing = [b for b in bands if self.slot(b) is None]
        if missing:
            raise UsageError(
                f"aion: band mapping {self.name!r} has no slot for band(s) {', '.join(missing)} "
                f"(it maps {', '.join(self.known())})"
            )
        if any(b in EUCLID_BANDS for b in bands) and not all(b in EUCLID_BANDS for b in bands):
            raise UsageError(f"aion: image bands {', '.join(bands)} mix Euclid and optical bands")
        out = [self.slot(b) for b in bands]
        dup = sorted({s for s in out if out.count(s) > 1})
        if dup:
            raise UsageError(f"aion: image bands {', '.join(bands)} fill codec slot(s) {', '.join(dup)} twice")
        return out  # type: ignore[return-value]

    def known(self) -> list[str]:
        native = HSC_BANDS if self.prefix == "HSC-" else DES_BANDS
        letters = [b[-1].lower() for b in native]
        return [*self.slots, *letters, *native]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "slots": dict(self.slots),
            "flux_scale": round(self.flux_scale, 6),
            "modality": self.modality,
            "pixel_scale": self.pixel_scale,
        }


MAPPINGS: dict[str, BandMapping] = {
    "hsc": BandMapping(
        "hsc",
        {"VIS": "HSC-R", "Y": "HSC-I", "J": "HSC-Z", "H": "HSC-Y"},
        NMGY_TO_HSC,
        "HSCImage",
        "tok_image_hsc",
        PIXEL_SCALE["hsc"],
    ),
    "legacy": BandMapping(
        "legacy",
        {"VIS": "DES-G", "Y": "DES-R", "J": "DES-I", "H": "DES-Z"},
        1.0,
        "LegacySurveyImage",
        "tok_image",
        PIXEL_SCALE["legacy"],
    ),
}
#: the learned adapter writes all five HSC bands
ADAPTER = BandMapping(
    "adapter", {b: b for b in HSC_BANDS}, NMGY_TO_HSC, "HSCImage", "tok_image_hsc", PIXEL_SCALE["hsc"]
)
DEFAULT_MAPPING = "auto"


def get_mapping(name: str) -> BandMapping | None:
    """The mapping called ``name`` (``hsc``, ``legacy`` or ``adapter``); ``None`` for ``auto``."""
    if name == "auto":
        return None
    if name == "adapter":
        return ADAPTER
    try:
        return MAPPINGS[name]
    except KeyError:
        raise UsageError(f"aion: unknown band mapping {name!r} (expected {', '.join(MAPPING_NAMES)})") from None


def auto_mapping(bands: list[str] | tuple[str, ...], pixel_scale: float) -> BandMapping:
    """The survey ``bands=auto`` picks for an image with these bands (see the module docstring)."""
    upper = [b.upper() for b in bands]
    if any(b.startswith("DES-") for b in upper):
        return MAPPINGS["legacy"]
    if any(b.startswith("HSC-") for b in upper) or "y" in bands:
        return MAPPINGS["hsc"]
    if any(b in OPTICAL for b in bands) and math.isfinite(pixel_scale) and pixel_scale > 0:
        return min(MAPPINGS.values(), key=lambda m: abs(math.log(pixel_scale / m.pixel_scale)))
    return MAPPINGS["hsc"]
