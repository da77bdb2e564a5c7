"""Hidden states of an AstroPT network up to one block, and token pooling.

Unlike astropt's ``generate_embeddings`` this stops after the chosen block instead of
running (and discarding) the rest, and it takes any subset of modalities, so one
modality can be embedded in a pass of its own.
"""

from __future__ import annotations

import torch

Inputs = list[tuple[str, torch.Tensor, torch.Tensor]]  # (modality, tokens, positions), in sequence order


def hidden_states(net: torch.nn.Module, inputs: Inputs, layer: int) -> torch.Tensor:
    """``[N, T, n_embd]`` after block ``layer`` (``-1``: after every block and ``ln_f``)."""
    tr = net.transformer
    x = torch.cat([tr.wte[name](tok) + tr.wpe[name](pos) for name, tok, pos in inputs], dim=1)
    x = tr.drop(x)
    blocks = tr.h if layer < 0 else tr.h[: layer + 1]
    for block in blocks:
        x = block(x)
    return tr.ln_f(x) if layer < 0 else x


def pool(h: torch.Tensor, how: str) -> torch.Tensor:
    """``[N, T, D]`` -> ``[N, D]``: mean, exp_decay (astropt's weights 1 .. 0.1 over tokens) or last."""
    if how == "mean":
        return h.mean(dim=1)
    if how == "last":
        return h[:, -1]
    w = torch.logspace(0, -1, h.shape[1], device=h.device, dtype=h.dtype)[None, :, None]
    return (w * h).sum(dim=1) / w.sum(dim=1)
