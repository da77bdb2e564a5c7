"""The ``astropt`` model: PyPI astropt's GPT, official weights, FMB embeddings.

Passes: the image tokens and the spectrum tokens each go through the network on their own, so
``spectrum`` depends on the spectrum only. ``joint`` is one pass over the image tokens followed
by the spectrum tokens (astropt's multimodal sequence), pooled over all of them; with causal
attention the image tokens of that pass are exactly an image-only pass, so ``image`` is read
from it instead of running the images twice. Rows without a usable spectrum get NaN
``spectrum`` and ``joint`` rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import ModelError
from fmb.models.base import Model, WeightsInfo
from fmb.specs import ModelSpec
from fmb_astropt.config import (
    IMAGE_SIZE_IMAGE_ONLY,
    IMAGE_SIZE_MULTIMODAL,
    IMAGES,
    PATCH,
    PIXEL_SCALE,
    SIZES,
    SPECTRA,
    Options,
    resolve_layer,
    size_of,
)

PREPROCESS_VERSION = 2  # bump when preprocess.py changes what the network sees


class AstroPTModel(Model):
    """A loaded AstroPT network plus the options that turn canonical batches into embeddings."""

    def __init__(self, spec: ModelSpec, weights: WeightsInfo, opts: Options, net: Any, device: str = "cpu") -> None:
        cfg = net.config
        self.net = net.to(device).eval()
        self.device = device
        self.opts = opts
        self.size = size_of(cfg.n_layer, cfg.n_head, cfg.n_embd)
        self.layer = resolve_layer(opts.layer, cfg.n_layer)
        self.modalities = tuple(net.modality_registry.names())
        img = net.modality_registry.get_config(IMAGES)
        self.patch = int(getattr(img, "patch_size", 0) or PATCH)  # the checkpoint's own patch size
        if img.input_size % (self.patch * self.patch):
            raise ModelError(
                f"astropt: image input size {img.input_size} is not a multiple of patch {self.patch} x {self.patch}"
            )
        self.n_chan = img.input_size // (self.patch * self.patch)
        self.image_size = opts.image_size or (
            IMAGE_SIZE_MULTIMODAL if SPECTRA in self.modalities else IMAGE_SIZE_IMAGE_ONLY
        )
        if self.image_size % self.patch:
            raise ModelError(
                f"astropt: image_size {self.image_size} is not a multiple of the checkpoint's patch size {self.patch}"
            )
        if (self.image_size // self.patch) ** 2 > cfg.block_size:
            raise ModelError(
                f"astropt: image_size {self.image_size} gives more tokens than the block size {cfg.block_size}"
            )
        super().__init__(spec, weights, self.settings())

    @property
    def outputs(self) -> dict[str, int]:
        dim = int(self.net.config.n_embd)
        return {"image": dim, "spectrum": dim, "joint": dim} if SPECTRA in self.modalities else {"image": dim}

    def settings(self) -> dict[str, Any]:
        o = self.opts
        return {
            "size": self.size,
            "layer": self.layer,
            "pooling": o.pooling,
            "channels": o.channels,
            "softening": o.softening,
            "image_size": self.image_size,
            "modalities": list(self.modalities),
            "patch": self.patch,
            "stretch": o.stretch,
            "input": o.input,
            "pixel_scale": PIXEL_SCALE,
            "preprocess": PREPROCESS_VERSION,
        }

    def save_weights(self, path: str | Path) -> Path:
        """Write the network as an official-format ``ckpt.pt`` (``path`` itself if it ends in .pt)."""
        from fmb_astropt.checkpoint import model_args_of, save_checkpoint

        target = Path(path)
        target = target if target.suffix == ".pt" else target / "ckpt.pt"
        return save_checkpoint(target, self.net, model_args_of(self.net))

    # ------------------------------------------------------------------ inputs

    def image_inputs(self, batch: pa.RecordBatch) -> tuple[Any, Any]:
        from fmb.adapt import image_meta
        from fmb_astropt.preprocess import centre_crop_pad, image_tokens, rgb_tokens

        if self.opts.input == "rgb":
            if C.RGB not in batch.schema.names:
                raise ModelError("astropt: input=rgb needs an 'rgb' column (uint8 [3, H, W]) in the dataset")
            rgb = centre_crop_pad(C.column_array(batch, C.RGB, np.uint8), self.image_size)
            tok, pos = rgb_tokens(rgb, self.patch)
        else:
            _, scale, _, _ = image_meta(batch.schema)
            tok, pos = image_tokens(
                C.column_array(batch, C.IMAGE),
                C.image_bands(batch.schema),
                self.image_size,
                self.n_chan,
                self.opts.channels,
                self.opts.softening,
                pixel_scale=scale,
                target_scale=PIXEL_SCALE,
                patch=self.patch,
                stretch=self.opts.stretch,
            )
        return tok.to(self.device), pos.to(self.device)

    def spectrum_inputs(self, batch: pa.RecordBatch) -> tuple[Any, Any, np.ndarray]:
        from fmb_astropt.preprocess import spectrum_tokens

        tok, pos, valid = spectrum_tokens(
            C.column_array(batch, C.FLUX),
            C.column_array(batch, C.IVAR),
            C.column_array(batch, C.MASK, bool),
            C.wavelength(batch),
        )
        return tok.to(self.device), pos.to(self.device), valid

    # ------------------------------------------------------------------ embeddings

    def prepare(self, batch: pa.RecordBatch) -> dict[str, Any]:
        """The batch's tokens and positions (``images``: ``(tok, pos)``; ``spectra``: ``(tok, pos, valid)``)
        for the modalities it has; the embed stage's loader runs this ahead of the forward pass."""
        names = batch.schema.names
        prepared: dict[str, Any] = {}
        if (C.RGB if self.opts.input == "rgb" else C.IMAGE) in names:
            prepared[IMAGES] = self.image_inputs(batch)
        if C.FLUX in names and SPECTRA in self.modalities:
            prepared[SPECTRA] = self.spectrum_inputs(batch)
        return prepared

    def embed_prepared(self, prepared: dict[str, Any]) -> dict[str, np.ndarray]:
        import torch

        from fmb_astropt.encode import hidden_states, pool

        has_img, has_spec = IMAGES in prepared, SPECTRA in prepared
        out: dict[str, torch.Tensor] = {}
        p = self.opts.pooling
        with torch.inference_mode():
            if has_img:
                ti, pi = prepared[IMAGES]
            if has_spec:
                ts, ps, valid = prepared[SPECTRA]
                out["spectrum"] = pool(hidden_states(self.net, [(SPECTRA, ts, ps)], self.layer), p)
            if has_img and has_spec:
                h = hidden_states(self.net, [(IMAGES, ti, pi), (SPECTRA, ts, ps)], self.layer)
                out["joint"] = pool(h, p)
                if self.net.config.attn_type == "causal":
                    out["image"] = pool(h[:, : ti.shape[1]], p)
            if has_img and "image" not in out:
                out["image"] = pool(hidden_states(self.net, [(IMAGES, ti, pi)], self.layer), p)
        res = {k: v.float().cpu().numpy() for k, v in out.items()}
        if has_spec:
            for k in ("spectrum", "joint"):
                if k in res:
                    res[k][~valid] = np.nan
        return res

    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        return self.embed_prepared(self.prepare(batch))


def load_model(
    spec: ModelSpec, weights: str = "auto", device: str = "cpu", options: dict[str, Any] | None = None, seed: int = 0
) -> AstroPTModel:
    """Loader named by the spec (see the module docstring and :class:`fmb_astropt.config.Options`)."""
    from fmb_astropt.weights import resolve_network

    opts = Options.parse(options)
    net, info = resolve_network(weights, opts, seed)
    cfg = net.config
    if opts.size and SIZES[opts.size] != (cfg.n_layer, cfg.n_head, cfg.n_embd):
        raise ModelError(
            f"astropt: size {opts.size} asked for, but the weights ({info.location}) are a "
            f"{size_of(cfg.n_layer, cfg.n_head, cfg.n_embd)} model"
        )
    return AstroPTModel(spec, info, opts, net, device)
