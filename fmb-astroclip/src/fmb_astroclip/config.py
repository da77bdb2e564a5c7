"""Architecture sizes: ``official`` (the published AstroCLIP) and ``small`` (trains on a CPU in minutes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from fmb.errors import ModelError

#: The DESI coadd grid the spectrum backbone reads (3600 + 0.8 i Angstrom).
SPECTRUM_NPIX = 7781
IMAGE_SIZE = 144


@dataclass(frozen=True)
class AstroClipConfig:
    """Every number that fixes the network's shape (saved next to retrained checkpoints)."""

    size: str = "official"
    # image backbone: DINOv2-style ViT
    vit_dim: int = 1024
    vit_depth: int = 24
    vit_heads: int = 16
    vit_patch: int = 12
    vit_block_chunks: int = 4
    vit_layerscale: float = 1e-5
    image_size: int = IMAGE_SIZE
    # spectrum backbone: SpecFormer
    spec_dim: int = 768
    spec_depth: int = 6
    spec_heads: int = 6
    spec_max_len: int = 800
    spec_section: int = 20
    spec_overlap: int = 10
    spectrum_npix: int = SPECTRUM_NPIX
    # heads and the shared space
    embed_dim: int = 1024
    head_heads: int = 4
    head_dropout: float = 0.1
    logit_scale: float = 15.5
    learnable_logit_scale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AstroClipConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"astroclip: unknown config key(s) {', '.join(unknown)}")
        return cls(**data)


SIZES: dict[str, AstroClipConfig] = {
    "official": AstroClipConfig(),
    "small": AstroClipConfig(
        size="small",
        vit_dim=64,
        vit_depth=2,
        vit_heads=4,
        vit_block_chunks=2,
        spec_dim=64,
        spec_depth=2,
        spec_heads=4,
        embed_dim=128,
        head_heads=4,
    ),
}


def config_for(size: str) -> AstroClipConfig:
    """The named size, or a one-line ModelError listing the known ones."""
    try:
        return SIZES[size]
    except KeyError:
        raise ModelError(f"astroclip: unknown size {size!r} (known: {', '.join(SIZES)})") from None
