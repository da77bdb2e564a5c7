"""The astropt model loader (not implemented yet: see issue #5)."""

from __future__ import annotations

from typing import Any

from fmb.errors import ModelError
from fmb.specs import ModelSpec


def load_model(spec: ModelSpec, weights: str = "auto", device: str = "cpu",
               options: dict[str, Any] | None = None, seed: int = 0) -> Any:
    """Stops with an honest one-line error until the model lands."""
    raise ModelError(f"model {spec.name!r} is not implemented yet (fmb-astropt {spec.version} only "
                     f"registers its name; it arrives with issue #5); use --model baseline meanwhile")
