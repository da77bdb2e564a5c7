"""The user's column mapping and shaping options -> a conversion :class:`Plan`.

``columns`` maps a canonical name to a source column, as a TOML table or as a CLI string
``"object_id=id;flux=spec_flux;image=cutout"`` (:func:`parse_columns`). Without it every canonical
name present in the file maps onto itself (:func:`default_columns`). Shape, bands, pixel scale,
units and wavelength grid not given as options are read from canonical-style field metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fmb.data import canonical as C
from fmb.params import as_float, as_list

CANONICAL_KEYS = (C.OBJECT_ID, C.IMAGE, C.RGB, C.FLUX, C.IVAR, "error", C.MASK, C.WAVELENGTH, *C.LABEL_COLUMNS)


def parse_columns(columns: Any) -> dict[str, list[str]]:
    """A column mapping from a TOML table or a ``"a=x;b=y,z"`` string -> ``{canonical: [sources]}``."""
    if columns is None or columns == "":
        return {}
    if isinstance(columns, str):
        pairs = {}
        for item in columns.replace("\n", ";").split(";"):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not val.strip():
                raise ValueError(f"bad column mapping {item!r}: expected canonical=source")
            if key.strip() in pairs:
                raise ValueError(f"column mapping names {key.strip()!r} twice ({columns!r})")
            pairs[key.strip()] = val
        columns = pairs
    out = {}
    for key, val in dict(columns).items():
        if key not in CANONICAL_KEYS:
            raise ValueError(f"unknown canonical field {key!r} in columns; known: {', '.join(CANONICAL_KEYS)}")
        out[key] = as_list(val) or []
    return out


@dataclass
class Plan:
    """How raw columns become canonical ones (built by each dataset, finished by probing data)."""

    object_id: list[str]
    image: list[str] = field(default_factory=list)
    rgb: str | None = None
    flux: str | None = None
    ivar: str | None = None
    error: str | None = None
    mask: str | None = None
    wavelength: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    image_bands: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    image_layout: str = "chw"
    band_scale: list[float] | None = None
    pixel_scale: float | None = None
    image_unit: str = "unknown"
    flux_unit: str = "unknown"
    wavelength_mode: str = "auto"
    wavelength_start: float | None = None
    wavelength_step: float | None = None
    # filled by probing
    rgb_shape: tuple[int, ...] | None = None
    npix: int | None = None
    #: the shared grid runs red to blue in the files: flux/ivar/mask are reversed on reading
    reverse_spectra: bool = False
    id_type: pa.DataType = field(default_factory=pa.int64)

    def sources(self) -> list[str]:
        """Every mapped source path."""
        srcs = [*self.object_id, *self.image, *self.labels.values()]
        srcs += [s for s in (self.rgb, self.flux, self.ivar, self.error, self.mask, self.wavelength) if s]
        return srcs

    def top_columns(self) -> list[str]:
        return sorted({s.partition(".")[0] for s in self.sources()})

    def to_options(self) -> dict:
        return {
            "columns": {
                k: v
                for k, v in self.__dict__.items()
                if k in ("object_id", "image", "rgb", "flux", "ivar", "error", "mask", "wavelength") and v
            },
            "labels": dict(self.labels),
            "image_bands": self.image_bands,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "image_layout": self.image_layout,
            "band_scale": self.band_scale,
            "pixel_scale": self.pixel_scale,
            "image_unit": self.image_unit,
            "wavelength": self.wavelength_mode,
            "wavelength_start": self.wavelength_start,
            "wavelength_step": self.wavelength_step,
            "reverse_spectra": self.reverse_spectra,
            "id_type": str(self.id_type),
        }


def default_columns(schema: pa.Schema) -> dict[str, list[str]]:
    """Canonical names present in a file map onto themselves."""
    return {k: [k] for k in CANONICAL_KEYS if k in schema.names}


def _image_metadata(schema: pa.Schema, col: str | None) -> dict:
    """Shape/bands/pixel_scale/unit from a canonical-style ``image`` field's metadata."""
    if not col or col not in schema.names:
        return {}
    fld = schema.field(col)
    out: dict[str, Any] = {}
    if C.field_meta(fld, "shape"):
        out["shape"] = tuple(int(s) for s in C.field_meta(fld, "shape").split(","))
    if C.field_meta(fld, "bands"):
        out["bands"] = C.field_meta(fld, "bands").split(",")
    ps = C.field_meta(fld, "pixel_scale")
    if ps:
        out["pixel_scale"] = as_float(ps, "pixel_scale")
    if C.field_meta(fld, "unit"):
        out["unit"] = C.field_meta(fld, "unit")
    return out


def _flux_unit(schema: pa.Schema, col: str | None) -> str | None:
    return C.field_meta(schema.field(col), "unit") if col and col in schema.names else None


def _grid_metadata(schema: pa.Schema, col: str) -> tuple[float, float] | None:
    if col not in schema.names:
        return None
    fld = schema.field(col)
    start, step = C.field_meta(fld, "wavelength_start"), C.field_meta(fld, "wavelength_step")
    return (float(start), float(step)) if start is not None and step is not None else None
