"""A learned Euclid -> HSC image adapter trained through the frozen AION image codec.

Re-implements the idea of upstream FMB's ``EuclidToHSC``/``HSCToEuclid`` (not its code): two small
U-Nets (widths 16/32/64, two max-pool down and two bilinear up stages, GroupNorm so a row's output
never depends on its batch mates), one Euclid VIS/Y/J/H (4 bands) -> HSC G/R/I/Z/Y (5 bands), one
back. Training minimises the cycle loss

    Euclid -> to_hsc -> codec encode -> quantise (straight-through) -> codec decode -> to_euclid

as a mean squared error in the codec's own arcsinh range-compressed space. Only the adapters
learn; the codec is frozen. Both nets work in compressed space; ``to_hsc`` output is clamped
to +-1.5 there (~ 400 nmgy per pixel, far beyond any codec clamp) before it is expanded back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmb.errors import ModelError
from fmb_aion.bands import EUCLID_BANDS, HSC_BANDS, NMGY_TO_HSC
from fmb_aion.tokens import fix_hsc_decode

FORMAT = "fmb-aion-adapter/1"
RANGE_FACTOR = 0.01  # the codec's range_compression_factor
MULT_FACTOR = 10.0  # and mult_factor
Z_LIMIT = 1.5


def compress(x: torch.Tensor) -> torch.Tensor:
    """The codec's range compression of nanomaggies."""
    return torch.arcsinh(x / RANGE_FACTOR) * RANGE_FACTOR * MULT_FACTOR


def expand(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`compress`."""
    return torch.sinh(z / MULT_FACTOR / RANGE_FACTOR) * RANGE_FACTOR


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.GroupNorm(4, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GroupNorm(4, cout),
        nn.SiLU(),
    )


class UNet(nn.Module):
    """A two-level U-Net ``[N, cin, H, W] -> [N, cout, H, W]`` (H, W divisible by 4)."""

    def __init__(self, cin: int, cout: int, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.enc1, self.enc2, self.mid = _block(cin, w1), _block(w1, w2), _block(w2, w3)
        self.dec2, self.dec1 = _block(w3 + w2, w2), _block(w2 + w1, w1)
        self.head = nn.Conv2d(w1, cout, 1)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up(m), e2], 1))
        return self.head(self.dec1(torch.cat([self.up(d2), e1], 1)))


class EuclidHSCAdapter(nn.Module):
    """The pair of U-Nets; see the module docstring."""

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.to_hsc = UNet(len(EUCLID_BANDS), len(HSC_BANDS), self.widths)
        self.to_euclid = UNet(len(HSC_BANDS), len(EUCLID_BANDS), self.widths)

    def euclid_to_hsc(self, euclid_nmgy: torch.Tensor) -> torch.Tensor:
        """Euclid VIS/Y/J/H in nanomaggies -> an HSC-like G/R/I/Z/Y image in HSC units (zero point 27)."""
        z = self.to_hsc(compress(euclid_nmgy)).clamp(-Z_LIMIT, Z_LIMIT)
        return expand(z) * NMGY_TO_HSC

    def cycle_loss(self, euclid_nmgy: torch.Tensor, codec: Any) -> torch.Tensor:
        """MSE between compressed input and its round trip through the frozen codec."""
        latent = codec_latent(codec, self.euclid_to_hsc(euclid_nmgy))
        decoded = codec._decode(codec.quantizer.quantize(latent), bands=list(HSC_BANDS)).flux
        back = self.to_euclid(compress(decoded / NMGY_TO_HSC))
        return torch.mean((back - compress(euclid_nmgy)) ** 2)


def codec_latent(codec: Any, hsc: torch.Tensor) -> torch.Tensor:
    """``ImageCodec._encode`` of 96 x 96 HSC G/R/I/Z/Y images, rewritten so gradients flow.

    0.0.2's ``_encode`` clamps band by band in place, which autograd rejects; this uses the
    codec's own modules and constants with an out-of-place clamp, and is otherwise the same.
    """
    from aion.codecs.preprocessing.band_to_index import BAND_CENTER_MAX

    bands = list(HSC_BANDS)
    limits = torch.tensor([BAND_CENTER_MAX[b] for b in bands], dtype=hsc.dtype).view(1, -1, 1, 1)
    x = torch.maximum(torch.minimum(hsc, limits), -limits)
    x = codec._range_compress(codec.rescaler.forward(x.clone(), "HSC"))
    x, channel_mask = codec.image_padder.forward(x, bands)
    h = codec.pre_quant_proj(codec.encoder(codec.subsample_in(x, channel_mask)))
    return h.reshape(h.shape[0], h.shape[1], -1)


def freeze(codec: Any) -> Any:
    """The codec in eval mode, without gradients, able to decode HSC."""
    codec.eval().requires_grad_(False)
    return fix_hsc_decode(codec)


def train_step(
    adapter: EuclidHSCAdapter, codec: Any, x: torch.Tensor, optimiser: torch.optim.Optimizer, grad_clip: float = 1.0
) -> float:
    """One optimiser step on the cycle loss of the batch ``x`` (Euclid nanomaggies, 96 x 96)."""
    adapter.train()
    optimiser.zero_grad(set_to_none=True)
    loss = adapter.cycle_loss(x, codec)
    loss.backward()
    nn.utils.clip_grad_norm_(adapter.parameters(), grad_clip)
    optimiser.step()
    return float(loss.detach())


def save_adapter(adapter: EuclidHSCAdapter, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write a checkpoint that loads with ``torch.load(weights_only=True)``."""
    from fmb.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "widths": list(adapter.widths),
        "to_hsc": adapter.to_hsc.state_dict(),
        "to_euclid": adapter.to_euclid.state_dict(),
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def load_adapter(path: str | Path) -> tuple[EuclidHSCAdapter, dict[str, Any], str]:
    """The adapter, its metadata and the checkpoint's SHA-256.

    Read with ``torch.load(weights_only=True)``; each U-Net is filled with
    :func:`fmb.protocol.weights.load_state_dict_strict` (one-line :class:`ModelError` naming the keys of
    any missing, unexpected or wrong-shape tensor). The hash is computed only after the strict load.
    """
    from fmb.protocol.weights import load_state_dict_strict

    path = Path(path).expanduser()
    if path.is_dir():  # an `fmb retrain aion` run folder
        path = path / "adapter.pt"
    if not path.is_file():
        raise ModelError(f"aion: adapter checkpoint {str(path)!r} not found (train one with `fmb retrain aion`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            fmt = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
            raise ValueError(f"format {fmt!r}, expected {FORMAT!r}")
        widths = tuple(int(w) for w in blob["widths"])
        if len(widths) != 3 or min(widths) < 4 or any(w % 4 for w in widths):
            raise ValueError(f"widths {list(widths)} (three multiples of 4)")
        parts = {name: blob[name] for name in ("to_hsc", "to_euclid")}
        if not all(isinstance(v, dict) for v in parts.values()):
            raise ValueError("'to_hsc' and 'to_euclid' must be state dicts")
    except Exception as exc:
        raise ModelError(f"aion: {path} is not an fmb-aion adapter checkpoint ({exc})".splitlines()[0]) from exc
    adapter = EuclidHSCAdapter(widths)
    for name, state in parts.items():
        load_state_dict_strict(getattr(adapter, name), state, f"aion: adapter {path} ({name})")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return adapter.eval(), blob.get("meta", {}), sha
