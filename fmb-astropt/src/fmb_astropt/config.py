"""Fixed numbers of the official AstroPT models and the embedding options FMB accepts.

Sizes follow astropt's scaling family (``scripts/train.py`` and the v1 scaling runs);
``095M`` is the 12/12/768 model of ``Smith42/astroPT_v2.0`` (``070M`` is the same shape).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fmb.errors import ModelError

#: size name -> (n_layer, n_head, n_embd)
SIZES: dict[str, tuple[int, int, int]] = {
    "001M": (4, 8, 128),
    "005M": (6, 8, 256),
    "010M": (6, 8, 384),
    "020M": (6, 8, 512),
    "070M": (12, 12, 768),
    "095M": (12, 12, 768),
    "300M": (24, 16, 1024),
    "700M": (16, 8, 2048),
    "2100M": (26, 32, 2560),
}
DEFAULT_SIZE = "095M"
BLOCK_SIZE = 1024

IMAGES, SPECTRA = "images", "spectra"  # astropt's modality names (token order is alphabetical)
PATCH = 16  # image patch side, pixels
IMAGE_SIZE_IMAGE_ONLY = 256  # scripts/train.py (the official image-only models)
IMAGE_SIZE_MULTIMODAL = 224  # scripts/train_multimodal.py
SPECTRUM_PATCH = 256  # wavelength pixels per spectrum token (train_multimodal.py)
WAVE_OFFSET, WAVE_SCALE = 3000.0, 7000.0  # positions: (lambda - 3000) / 7000

PIXEL_SCALE = 0.262  # arcsec/px of the Legacy Survey DR8 cutouts v2.0 was trained on (data/get_desi.bash)
STRETCHES = ("rgb", "asinh")
INPUTS = ("image", "rgb")

OFFICIAL_REPO = "Smith42/astroPT_v2.0"
OFFICIAL_SIZES = ("095M",)  # sizes with an official v2.0 checkpoint on the hub


def hub_file(size: str) -> str:
    """Path of a size's checkpoint inside the official hub repository."""
    return f"astropt/{size}/ckpt.pt"


#: Euclid VIS/Y/J/H -> 3 channels, reddest first like the official JPEG (R=z, G=r, B=g) inputs.
EUCLID_CHANNELS = "H,Y+J,VIS"
POOLINGS = ("mean", "exp_decay", "last")
DEFAULT_SOFTENING = 0.02  # asinh stretch softening, in the image unit (nanomaggies)


@dataclass(frozen=True)
class Options:
    """User options (``--model astropt:key=value,...``) that select the model or change embeddings.

    ``size``: a name in :data:`SIZES` (a checkpoint's own shape wins when not given);
    ``layer``: block index whose output is pooled (``middle`` = ``n_layer // 2`` as astropt's
    ``generate_embeddings``; ``last`` = after the final block and ``ln_f``);
    ``pooling``: mean | exp_decay | last over the tokens of one pass;
    ``channels``: 3 comma-separated entries of ``+``-joined band names (averaged);
    ``stretch``: ``rgb`` (default: the Legacy Survey viewer's 8-bit colour render v2.0 was trained on) or
    ``asinh`` (``asinh(x / softening)`` per channel, floats; 0 = linear);
    ``softening``: for ``stretch=asinh``;
    ``input``: ``image`` (canonical float bands, resampled to 0.262"/px) or ``rgb`` (the uint8 ``rgb`` column);
    ``image_size``: resize target (0 = the model's: 256 image-only, 224 multimodal);
    ``hf_file``: checkpoint path inside a hub repository.
    """

    size: str = ""
    layer: str = "middle"
    pooling: str = "mean"
    channels: str = ""
    softening: float = DEFAULT_SOFTENING
    image_size: int = 0
    stretch: str = "rgb"
    input: str = "image"
    hf_file: str = ""

    @classmethod
    def parse(cls, options: dict[str, Any] | None) -> Options:
        opts = dict(options or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ModelError(
                f"model 'astropt': unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        o = cls(
            size=str(opts.get("size", "")),
            layer=str(opts.get("layer", "middle")),
            pooling=str(opts.get("pooling", "mean")),
            channels=str(opts.get("channels", "")),
            softening=float(opts.get("softening", DEFAULT_SOFTENING)),
            image_size=int(opts.get("image_size", 0)),
            hf_file=str(opts.get("hf_file", "")),
            stretch=str(opts.get("stretch", "rgb")),
            input=str(opts.get("input", "image")),
        )
        if o.stretch not in STRETCHES:
            raise ModelError(f"model 'astropt': stretch {o.stretch!r} is not one of {', '.join(STRETCHES)}")
        if o.input not in INPUTS:
            raise ModelError(f"model 'astropt': input {o.input!r} is not one of {', '.join(INPUTS)}")
        if o.size and o.size not in SIZES:
            raise ModelError(f"model 'astropt': unknown size {o.size!r} (one of {', '.join(SIZES)})")
        if o.pooling not in POOLINGS:
            raise ModelError(f"model 'astropt': pooling {o.pooling!r} is not one of {', '.join(POOLINGS)}")
        if o.layer not in ("middle", "last") and not o.layer.lstrip("-").isdigit():
            raise ModelError(f"model 'astropt': layer {o.layer!r} must be middle, last or a block index")
        if o.softening < 0:
            raise ModelError("model 'astropt': softening must be >= 0")
        return o

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_layer(layer: str, n_layer: int) -> int:
    """Block index to stop after; ``-1`` means after the last block and ``ln_f``."""
    if layer == "middle":
        return n_layer // 2
    if layer == "last":
        return -1
    i = int(layer)
    if not 0 <= i < n_layer:
        raise ModelError(f"model 'astropt': layer {i} is outside 0..{n_layer - 1} (or middle/last)")
    return i


def size_of(n_layer: int, n_head: int, n_embd: int) -> str:
    """The scaling-family name of a shape (``custom-L/H/E`` when not in the family)."""
    for name, shape in SIZES.items():
        if shape == (n_layer, n_head, n_embd) and name != "070M":
            return name
    return f"custom-{n_layer}/{n_head}/{n_embd}"
