"""Model input contracts: what a model's authors fed their network, declared in the model's spec.

A contract states the inputs the model was trained on (image bands and their effective wavelengths,
pixel scale, stamp size, flux unit and zero point, orientation, stretch; spectrum grid, resolution,
units, normalisation), each with the upstream file/line or paper it comes from (``source``).
Core uses it to adapt canonical data (:mod:`fmb.adapt`: resampling by pixel scale, band mapping)
and to warn when a data set lies outside the model's training domain. ``fmb models --json`` shows it.

Everything here is plain data (imports nothing heavy) so that registering a spec stays cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class ContractError(ValueError):
    """A contract that does not validate (the message names the field)."""


@dataclass(frozen=True)
class Band:
    """One photometric band: its name as surveys spell it and its effective wavelength in nanometres."""

    name: str
    wavelength_nm: float


@dataclass(frozen=True)
class ImageContract:
    """The image a network input is made from.

    ``pixel_scale_arcsec``: arcsec per pixel of the training images. ``stamp_size``: side in pixels of the
    network input (after any crop). ``native_stamp_size``: side of the stored training cutouts before that
    crop (``None`` when the same). ``flux_unit`` and ``zero_point`` (AB magnitude of one flux unit,
    e.g. 22.5 for nanomaggies; ``None`` for 8-bit images). ``orientation``: how the network array's axes
    relate to the canonical ``[band, row, col]`` cutout. ``stretch``: the intensity transform.
    ``source``: where each value comes from (upstream file:line, paper section).
    """

    bands: tuple[Band, ...]
    pixel_scale_arcsec: float
    stamp_size: int
    flux_unit: str
    zero_point: float | None
    orientation: str
    stretch: str
    source: str
    native_stamp_size: int | None = None

    def validate(self, where: str) -> None:
        if not self.bands or not all(isinstance(b, Band) for b in self.bands):
            raise ContractError(f"{where}: image.bands must be a non-empty tuple of Band")
        for b in self.bands:
            if not isinstance(b.name, str) or not b.name or not (float(b.wavelength_nm) > 0):
                raise ContractError(f"{where}: image band {b!r} needs a name and a positive wavelength_nm")
        if not (float(self.pixel_scale_arcsec) > 0):
            raise ContractError(f"{where}: image.pixel_scale_arcsec must be > 0, got {self.pixel_scale_arcsec!r}")
        for attr in ("stamp_size", "native_stamp_size"):
            v = getattr(self, attr)
            if v is None and attr == "native_stamp_size":
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ContractError(f"{where}: image.{attr} must be a positive int, got {v!r}")
        for attr in ("flux_unit", "orientation", "stretch", "source"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr).strip():
                raise ContractError(f"{where}: image.{attr} must be a non-empty string")


@dataclass(frozen=True)
class SpectrumContract:
    """The spectrum a network input is made from.

    Wavelengths in Angstrom (``_aa``; vacuum, observed frame). ``pixel_aa``: grid step for a linear grid
    (``None`` otherwise, then ``grid`` says what it is). ``resolution``: resolving power R or a
    description. ``normalisation``: what is done to the flux before the network.
    """

    wavelength_min_aa: float
    wavelength_max_aa: float
    pixel_aa: float | None
    resolution: str
    flux_unit: str
    normalisation: str
    source: str
    grid: str = ""

    def validate(self, where: str) -> None:
        if not (0 < float(self.wavelength_min_aa) < float(self.wavelength_max_aa)):
            raise ContractError(
                f"{where}: spectrum wavelength range {self.wavelength_min_aa!r}.."
                f"{self.wavelength_max_aa!r} must be positive and increasing"
            )
        if self.pixel_aa is not None and not (float(self.pixel_aa) > 0):
            raise ContractError(f"{where}: spectrum.pixel_aa must be > 0 or None")
        for attr in ("resolution", "flux_unit", "normalisation", "source"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr).strip():
                raise ContractError(f"{where}: spectrum.{attr} must be a non-empty string")


@dataclass(frozen=True)
class InputContract:
    """A model's inputs: an image contract and/or a spectrum contract (``None`` where it reads none)."""

    image: ImageContract | None = None
    spectrum: SpectrumContract | None = None

    def validate(self, where: str) -> None:
        if self.image is None and self.spectrum is None:
            raise ContractError(f"{where}: an input contract declares an image or a spectrum")
        if self.image is not None:
            self.image.validate(where)
        if self.spectrum is not None:
            self.spectrum.validate(where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (bands as ``{"name", "wavelength_nm"}`` dicts)."""
        return asdict(self)
