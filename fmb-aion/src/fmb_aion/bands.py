"""Euclid VIS/Y/J/H -> AION image-codec band slots (polymathic-aion 0.0.2 has no Euclid modality).

Two fixed mappings, chosen with ``--model aion:bands=NAME``; both keep the wavelength order
of the Euclid bands (VIS 0.72 um, Y 1.08 um, J 1.37 um, H 1.77 um pivot) in the codec's slots:

``hsc`` (default)  VIS->HSC-R, Y->HSC-I, J->HSC-Z, H->HSC-Y; modality ``HSCImage`` (``tok_image_hsc``).
                   HSC is the deep, sub-arcsecond survey closest to Euclid, and upstream FMB's
                   learned adapter also targets HSC. HSC-G stays empty (masked channel).
``legacy``         VIS->DES-G, Y->DES-R, J->DES-I, H->DES-Z; modality ``LegacySurveyImage`` (``tok_image``).

Flux conversion. Canonical FMB images are in nanomaggies (AB zero point 22.5), which is what
Legacy Survey slots expect (factor 1). HSC slots expect HSC coadd units (AB zero point 27), so
nanomaggies are multiplied by ``10 ** ((27 - 22.5) / 2.5) = 63.0957``; the codec's own
``RescaleToLegacySurvey`` divides that back out before its arcsinh range compression.
(Upstream FMB converted raw Euclid stamps to nanomaggies with per-band factors VIS 2835.34,
Y 1916.10, J 1370.25, H 918.35; FMB's datasets do that conversion when they build the canonical
images, so no such factor appears here.)

The third choice, ``bands=adapter`` with ``adapter=PATH``, replaces the fixed mapping by a
learned Euclid->HSC U-Net (see :mod:`fmb_aion.adapter` and ``fmb retrain aion``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fmb.errors import UsageError

EUCLID_BANDS = ("VIS", "Y", "J", "H")
HSC_BANDS = ("HSC-G", "HSC-R", "HSC-I", "HSC-Z", "HSC-Y")
NMGY_TO_HSC = 10.0 ** ((27.0 - 22.5) / 2.5)  # 63.0957...


@dataclass(frozen=True)
class BandMapping:
    """Which codec slot each Euclid band fills, the flux factor and the AION modality."""

    name: str
    slots: dict[str, str]
    flux_scale: float
    modality: str  # aion.modalities class name
    token_key: str

    def codec_bands(self, bands: list[str] | tuple[str, ...]) -> list[str]:
        """Codec band names for the image's own band order; unknown bands are an error."""
        missing = [b for b in bands if b not in self.slots]
        if missing:
            raise UsageError(f"aion: band mapping {self.name!r} has no slot for band(s) {', '.join(missing)} "
                             f"(it maps {', '.join(self.slots)})")
        return [self.slots[b] for b in bands]

    def to_dict(self) -> dict:
        return {"name": self.name, "slots": dict(self.slots), "flux_scale": round(self.flux_scale, 6),
                "modality": self.modality}


MAPPINGS: dict[str, BandMapping] = {
    "hsc": BandMapping("hsc", {"VIS": "HSC-R", "Y": "HSC-I", "J": "HSC-Z", "H": "HSC-Y"},
                       NMGY_TO_HSC, "HSCImage", "tok_image_hsc"),
    "legacy": BandMapping("legacy", {"VIS": "DES-G", "Y": "DES-R", "J": "DES-I", "H": "DES-Z"},
                          1.0, "LegacySurveyImage", "tok_image"),
}
#: the learned adapter writes all five HSC bands
ADAPTER = BandMapping("adapter", {b: b for b in HSC_BANDS}, NMGY_TO_HSC, "HSCImage", "tok_image_hsc")
DEFAULT_MAPPING = "hsc"


def get_mapping(name: str) -> BandMapping:
    """The mapping called ``name`` (``hsc``, ``legacy`` or ``adapter``)."""
    if name == "adapter":
        return ADAPTER
    try:
        return MAPPINGS[name]
    except KeyError:
        raise UsageError(f"aion: unknown band mapping {name!r} (expected hsc, legacy or adapter)") from None
