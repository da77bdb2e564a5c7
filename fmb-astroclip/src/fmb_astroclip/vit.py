"""The image backbone: a DINOv2-style vision transformer (AstroDINO is ViT-L with 12-pixel patches).

Parameter names follow the DINOv2 code AstroDINO was trained with, including its "block chunks"
(``blocks.<chunk>.<global index>.``, earlier slots of each chunk are parameter-free identities), so
the official state dicts load with no renaming. AstroCLIP's image head runs only
``patch_embed -> blocks -> norm`` (no CLS token, no position embedding); ``cls_token``,
``pos_embed`` and ``mask_token`` are kept so that checkpoints load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYERNORM_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` patches -> tokens ``[B, N, dim]``."""

    def __init__(self, patch: int, dim: int, channels: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a packed ``qkv`` projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(self, dim: int, heads: int, layerscale: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim, layerscale)
        self.norm2 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim, layerscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class BlockChunk(nn.ModuleList):
    """A run of blocks; identity slots keep the global block index in parameter names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = block(x)
        return x


class VisionTransformer(nn.Module):
    """DINOv2-style ViT; :meth:`forward_tokens` is the path AstroCLIP's image head uses."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        patch: int,
        image_size: int,
        layerscale: float = 1e-5,
        block_chunks: int = 4,
    ) -> None:
        super().__init__()
        n_patches = (image_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        blocks = [Block(dim, heads, layerscale) for _ in range(depth)]
        step = depth // block_chunks if block_chunks > 0 else depth
        self.blocks = nn.ModuleList(
            BlockChunk([nn.Identity()] * i + blocks[i : i + step]) for i in range(0, depth, step)
        )
        self.norm = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def block_list(self) -> list[Block]:
        """The transformer blocks in order (without the identity slots)."""
        return [b for chunk in self.blocks for b in chunk if isinstance(b, Block)]

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> normalised patch tokens ``[B, N, dim]``."""
        x = self.patch_embed(x)
        for chunk in self.blocks:
            x = chunk(x)
        return self.norm(x)
