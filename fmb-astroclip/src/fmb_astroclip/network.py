"""The AstroCLIP network (image and spectrum encoders into one space) and its CLIP loss."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from fmb_astroclip.config import AstroClipConfig
from fmb_astroclip.heads import ImageHead, SpectrumHead
from fmb_astroclip.specformer import SpecFormer
from fmb_astroclip.vit import VisionTransformer

NORMALISE_EPS = 1e-3  # upstream's F.normalize eps in the loss


class AstroClip(nn.Module):
    """``image_encoder`` and ``spectrum_encoder`` exactly as the official state dict names them.

    With ``learnable_logit_scale`` a parameter ``logit_scale`` holds log(scale) and the loss uses
    ``exp`` of it (upstream FMB forgot the exp); otherwise the scale is the fixed ``cfg.logit_scale``.
    """

    def __init__(self, cfg: AstroClipConfig) -> None:
        super().__init__()
        self.cfg = cfg
        vit = VisionTransformer(
            cfg.vit_dim,
            cfg.vit_depth,
            cfg.vit_heads,
            cfg.vit_patch,
            cfg.image_size,
            cfg.vit_layerscale,
            cfg.vit_block_chunks,
        )
        spec = SpecFormer(
            cfg.spec_dim, cfg.spec_depth, cfg.spec_heads, cfg.spec_max_len, cfg.spec_section, cfg.spec_overlap
        )
        self.image_encoder = ImageHead(vit, cfg.vit_dim, cfg.embed_dim, cfg.head_heads, cfg.head_dropout)
        self.spectrum_encoder = SpectrumHead(spec, cfg.spec_dim, cfg.embed_dim, cfg.head_heads, cfg.head_dropout)
        if cfg.learnable_logit_scale:
            self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale)))

    def make_scale_learnable(self) -> None:
        """Add the ``logit_scale`` parameter (log of the current scale) if it is not there yet."""
        if not self.cfg.learnable_logit_scale:
            self.cfg = replace(self.cfg, learnable_logit_scale=True)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(self.cfg.logit_scale)))

    def scale(self) -> torch.Tensor | float:
        """The multiplier of cosine similarities in the loss."""
        return self.logit_scale.exp() if self.cfg.learnable_logit_scale else self.cfg.logit_scale

    def forward(self, images: torch.Tensor, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_encoder(images), self.spectrum_encoder(spectra)


def clip_loss(image: torch.Tensor, spectrum: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE over the batch: matching pairs sit on the diagonal."""
    image = F.normalize(image.float(), dim=-1, eps=NORMALISE_EPS)
    spectrum = F.normalize(spectrum.float(), dim=-1, eps=NORMALISE_EPS)
    logits = scale * image @ spectrum.T
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
