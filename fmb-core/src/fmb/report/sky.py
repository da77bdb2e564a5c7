"""Links from an object's sky position to public viewers (plain URL templates: nothing is fetched).

Templates, as documented by the viewers:
- Legacy Surveys sky viewer (https://www.legacysurvey.org/viewer, query parameters ``ra``, ``dec``, ``layer``,
  ``zoom``; DR10 images cover most of the Euclid Q1 fields);
- ESASky (https://sky.esa.int/esasky/, parameters ``target`` "ra dec" in degrees, ``fov`` in degrees, ``sci``).
"""

from __future__ import annotations

import math
from urllib.parse import quote

LEGACY_VIEWER = "https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:.6f}&layer=ls-dr10&zoom=16"
ESASKY = "https://sky.esa.int/esasky/?target={target}&fov=0.02&sci=true"


def has_position(ra: object, dec: object) -> bool:
    """True for two finite numbers (a null or NaN coordinate makes no link)."""
    try:
        return math.isfinite(float(ra)) and math.isfinite(float(dec))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def legacy_viewer_url(ra: float, dec: float) -> str | None:
    """Legacy Surveys viewer centred on (ra, dec) in degrees; None without a position."""
    return LEGACY_VIEWER.format(ra=float(ra), dec=float(dec)) if has_position(ra, dec) else None


def esasky_url(ra: float, dec: float) -> str | None:
    """ESASky centred on (ra, dec) in degrees; None without a position."""
    if not has_position(ra, dec):
        return None
    return ESASKY.format(target=quote(f"{float(ra):.6f} {float(dec):+.6f}"))
