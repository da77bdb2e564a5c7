"""AstroCLIP's heads: one learned query cross-attends over backbone tokens, then an MLP.

Image head: ``mlp(x)`` (no residual); spectrum head: ``x + mlp(x)``, as upstream. When the key
width differs from the query width, ``nn.MultiheadAttention`` stores separate
``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` (the official spectrum head); otherwise one
packed ``in_proj_weight`` (the official image head).
"""

from __future__ import annotations

import torch
from torch import nn

from fmb_astroclip.specformer import MLP, SpecFormer
from fmb_astroclip.vit import VisionTransformer


class CrossAttentionHead(nn.Module):
    """``[B, T, kdim]`` tokens -> ``[B, 1, dim]``: a learned query, multi-head attention, LayerNorm."""

    def __init__(self, dim: int, heads: int, kdim: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim))
        self.multihead_attn = nn.MultiheadAttention(dim, heads, batch_first=True, kdim=kdim, vdim=kdim)
        self.layernorm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query = self.query.expand(tokens.shape[0], -1, -1)
        attended = self.multihead_attn(query, tokens, tokens, need_weights=False)[0]
        return self.layernorm(self.dropout(attended))


class _Head(nn.Module):
    residual = False

    def __init__(self, backbone: nn.Module, backbone_dim: int, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.cross_attention = CrossAttentionHead(dim, heads, backbone_dim, dropout)
        self.mlp = MLP(dim, 4 * dim)
        self.mlp_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> unnormalised ``[B, dim]`` embeddings."""
        return self.forward_tokens(self.backbone.forward_tokens(x))

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Backbone tokens -> unnormalised ``[B, dim]`` embeddings (the trainable part)."""
        h = self.cross_attention(tokens)
        m = self.mlp_dropout(self.mlp(h))
        return (h + m if self.residual else m)[:, 0]


class ImageHead(_Head):
    """AstroDINO tokens -> embedding (``[B, 3, 144, 144]`` RGB in)."""

    def __init__(self, backbone: VisionTransformer, backbone_dim: int, dim: int, heads: int, dropout: float) -> None:
        super().__init__(backbone, backbone_dim, dim, heads, dropout)


class SpectrumHead(_Head):
    """SpecFormer tokens -> embedding (``[B, 7781]`` spectra in), with a residual MLP."""

    residual = True

    def __init__(self, backbone: SpecFormer, backbone_dim: int, dim: int, heads: int, dropout: float) -> None:
        super().__init__(backbone, backbone_dim, dim, heads, dropout)
