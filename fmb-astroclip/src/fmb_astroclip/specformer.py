"""The spectrum backbone: SpecFormer (a transformer over overlapping windows of a standardised spectrum).

Preprocessing as upstream: each spectrum is standardised by its own mean and (unbiased) standard
deviation clipped at 0.2; cut into windows of ``section`` pixels with stride ``section - overlap``
(a final partial window is dropped: 777 windows on the 7781-pixel grid); each window is left-padded
with two zeros to ``section + 2`` values; a leading token holds ``(mean - 2) / 2`` and
``(std - 2) / 8``. Parameter names follow upstream's SpecFormer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.attention(x).split(d, 2))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.projection(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """``encoder -> GELU -> decoder`` (upstream's two-layer MLP, also used by the heads)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(dim, hidden)
        self.activation = nn.GELU()
        self.decoder = nn.Linear(hidden, dim)
        self.dropout_layer = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout_layer(self.decoder(self.activation(self.encoder(x))))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.layernorm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.layernorm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm1(x))
        return x + self.mlp(self.layernorm2(x))


def spectrum_tokens(x: torch.Tensor, section: int = 20, overlap: int = 10) -> torch.Tensor:
    """``[B, L]`` spectra -> ``[B, 1 + windows, section + 2]`` SpecFormer input tokens."""
    std = x.std(1, keepdim=True).clamp(min=0.2)
    mean = x.mean(1, keepdim=True)
    z = (x - mean) / std
    stride = section - overlap
    n_windows = (z.shape[1] - section) // stride + 1
    windows = z.unfold(1, section, stride)[:, :n_windows]
    tokens = F.pad(windows, (2, 0, 1, 0))
    head = torch.zeros_like(tokens[:, 0])
    head[:, 0] = (mean[:, 0] - 2) / 2
    head[:, 1] = (std[:, 0] - 2) / 8
    return torch.cat([head[:, None], tokens[:, 1:]], 1)


class SpecFormer(nn.Module):
    """Token embedding + learned positions + post-norm stack; ``head`` reconstructs windows (pretraining)."""

    def __init__(
        self, dim: int, depth: int, heads: int, max_len: int = 800, section: int = 20, overlap: int = 10
    ) -> None:
        super().__init__()
        self.section, self.overlap, self.max_len = section, overlap, max_len
        self.data_embed = nn.Linear(section + 2, dim)
        self.position_embed = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(depth))
        self.final_layernorm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, section + 2)
        self._init_weights(depth)

    def _init_weights(self, depth: int) -> None:
        std = 1 / math.sqrt(self.data_embed.out_features)
        for emb in (self.data_embed, self.position_embed):
            nn.init.trunc_normal_(emb.weight, std=std, a=-3 * std, b=3 * std)
        for module, d in [*((m, depth) for m in self.blocks.modules()), *((m, 0.5) for m in self.head.modules())]:
            if isinstance(module, nn.Linear):
                s = 1 / math.sqrt(2 * module.weight.shape[-1] * d)
                nn.init.trunc_normal_(module.weight, std=s, a=-3 * s, b=3 * s)
                nn.init.zeros_(module.bias)

    @property
    def block_list(self) -> list[TransformerBlock]:
        return list(self.blocks)

    def forward_tokens(self, spectra: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` spectra -> final hidden states ``[B, T, dim]`` (the head's keys and values)."""
        x = spectrum_tokens(spectra, self.section, self.overlap)
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"SpecFormer: {t} tokens exceed max_len {self.max_len}")
        x = self.data_embed(x) + self.position_embed.weight[:t]
        for block in self.blocks:
            x = block(x)
        return self.final_layernorm(x)
