"""The ``aion`` model: codecs tokenise, ``AION`` encodes, a masked mean over tokens embeds.

Outputs: ``image`` (the 576 image tokens alone), ``spectrum`` (the 273 DESI spectrum tokens
alone) and ``joint`` (both in one encoder pass). Each is the mean of the encoder output
(``AION.encode``'s context: ``decoder_proj_context(encoder(x)) + encoder_emb``) over the valid
encoder tokens (tokens the encoder masks are zeroed by AION, so they are left out of the mean).
Rows with a missing modality get NaN rows in every output that needs it.

Options (``--model aion:key=value,...``): ``size=base|tiny`` (architecture for random
initialisation; see :mod:`fmb_aion.sizes`), ``bands=auto|hsc|legacy|adapter`` (target survey and
band slots; ``auto`` picks Legacy Survey or HSC from the image's bands and pixel scale, see
:mod:`fmb_aion.bands`), ``adapter=PATH`` (a checkpoint from ``fmb retrain aion``; implies
``bands=adapter``). Images are resampled to the target survey's pixel scale first
(:mod:`fmb_aion.preprocess`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import ModelError, UsageError
from fmb.models.base import Model
from fmb.specs import ModelSpec
from fmb_aion.bands import DEFAULT_MAPPING, EUCLID_BANDS, HSC_BANDS, BandMapping, auto_mapping, get_mapping
from fmb_aion.preprocess import (
    IMAGE_RESAMPLE,
    IMAGE_SIZE,
    PREPROCESS_VERSION,
    image_pixel_scale,
    images_from_batch,
    spectra_from_batch,
)
from fmb_aion.tokens import image_tokens, spectrum_tokens
from fmb_aion.weights import Components, resolve, save_folder

OPTIONS = ("size", "bands", "adapter")
MICRO_BATCH = 16  # rows per codec / encoder call (bounds memory at the base size)
SPECTRUM_KEY = "tok_spectrum_desi"
POOLING = "masked mean of AION.encode output over valid encoder tokens"


class AionModel(Model):
    """See the module docstring."""

    def __init__(
        self,
        spec: ModelSpec,
        comps: Components,
        options: dict[str, Any],
        mapping: BandMapping | None,
        adapter: Any = None,
        adapter_sha256: str = "",
        device: str = "cpu",
    ) -> None:
        super().__init__(spec, comps.info, options)
        self.device = device
        self.comps = comps
        self.aion = comps.model.to(device)
        self.image_codec = comps.image_codec.to(device)
        self.spectrum_codec = comps.spectrum_codec.to(device)
        self.mapping = mapping
        self.adapter = adapter.to(device) if adapter is not None else None
        self.adapter_sha256 = adapter_sha256
        self.dim = int(self.aion.dim)
        for key in ((mapping.token_key,) if mapping else ()) + (SPECTRUM_KEY,):
            self._check_key(key)

    def _check_key(self, key: str) -> None:
        if key not in self.aion.encoder_embeddings:
            raise ModelError(f"aion: these weights have no encoder embedding for {key!r}")

    def mapping_for(self, batch: pa.RecordBatch) -> BandMapping:
        """The fixed mapping, or the one ``bands=auto`` picks for this batch's bands and pixel scale."""
        if self.mapping is not None:
            return self.mapping
        m = auto_mapping(C.image_bands(batch.schema), image_pixel_scale(batch))
        self._check_key(m.token_key)
        return m

    @property
    def outputs(self) -> dict[str, int]:
        return {k: self.dim for k in self.spec.outputs}

    def settings(self) -> dict[str, Any]:
        return {
            "size": self.comps.size,
            "dim": self.dim,
            "encoder_depth": len(self.aion.encoder),
            "bands": self.mapping.to_dict() if self.mapping else {"name": "auto"},
            "adapter_sha256": self.adapter_sha256,
            "preprocess": PREPROCESS_VERSION,
            "image_size": IMAGE_SIZE,
            "image_resample": IMAGE_RESAMPLE,
            "pooling": POOLING,
            "image_tokens": self.mapping.token_key if self.mapping else "auto",
            "spectrum_tokens": SPECTRUM_KEY,
        }

    def save_weights(self, path: str | Path) -> Path:
        """Save model and codecs as a snapshot folder that ``--weights PATH`` loads."""
        return save_folder(path, self.aion, self.image_codec, self.spectrum_codec)

    # -- tokens
    def _codec_images(self, flux: np.ndarray, bands: list[str], mapping: BandMapping) -> tuple[Any, list[str]]:
        """Images in the codec's units and band names (fixed mapping or adapter)."""
        import torch

        x = torch.from_numpy(flux).to(self.device)
        if self.adapter is None:
            return x * mapping.flux_scale, mapping.codec_bands(bands)
        if sorted(bands) != sorted(EUCLID_BANDS):
            raise UsageError(f"aion: the adapter reads Euclid {'/'.join(EUCLID_BANDS)} images, got {bands}")
        order = [bands.index(b) for b in EUCLID_BANDS]
        return self.adapter.euclid_to_hsc(x[:, order]), list(HSC_BANDS)

    def codec_inputs(self, batch: pa.RecordBatch) -> tuple[Any, list[str], BandMapping, np.ndarray]:
        """What the image codec is given for ``batch``: flux ``[N, B, 96, 96]`` in the codec's units, its
        codec band names, the mapping used and the rows with an image (all rows are returned)."""
        img, mapping = self._host_images(batch)
        x, codec_bands = self._codec_images(img.flux, img.bands, mapping)
        return x, codec_bands, mapping, img.valid

    def _host_images(self, batch: pa.RecordBatch) -> tuple[Any, BandMapping]:
        """The batch's images resampled for the codec (numpy, host side) and the band mapping."""
        mapping = self.mapping_for(batch)
        if self.adapter is None:
            mapping.codec_bands(C.image_bands(batch.schema))  # refuse unknown bands before any work
        return images_from_batch(batch, mapping.pixel_scale), mapping

    def _image_tokens(self, flux: Any, codec_bands: list[str], mapping: BandMapping) -> Any:
        import torch

        parts = [
            image_tokens(self.image_codec, flux[lo : lo + MICRO_BATCH], codec_bands, mapping.modality)
            for lo in range(0, len(flux), MICRO_BATCH)
        ]
        return torch.cat(parts)

    def _spectrum_tokens(self, sp: Any, rows: np.ndarray) -> Any:
        import torch

        parts = []
        for lo in range(0, len(rows), MICRO_BATCH):
            r = rows[lo : lo + MICRO_BATCH]
            parts.append(spectrum_tokens(self.spectrum_codec, sp.flux[r], sp.ivar[r], sp.mask[r], sp.wavelength[r]))
        return torch.cat(parts).to(self.device)

    # -- encoder
    def pool(self, tokens: dict[str, Any]) -> np.ndarray:
        """Masked-mean encoder embeddings ``[n, dim]`` of token tensors with ``n`` rows each."""

        n = next(iter(tokens.values())).shape[0]
        out = np.empty((n, self.dim), np.float32)
        for lo in range(0, n, MICRO_BATCH):
            inp = {k: v[lo : lo + MICRO_BATCH] for k, v in tokens.items()}
            n_tok = sum(v.shape[1] for v in inp.values())
            enc_tokens, enc_emb, enc_mask, _ = self.aion.embed_inputs(inp, num_encoder_tokens=n_tok)
            context = self.aion._encode(enc_tokens, enc_emb, enc_mask)
            keep = (~enc_mask.reshape(enc_mask.shape[0], -1)).to(context.dtype).unsqueeze(-1)
            pooled = (context * keep).sum(1) / keep.sum(1).clamp_min(1.0)
            out[lo : lo + len(pooled)] = pooled.float().cpu().numpy()
        return out

    def prepare(self, batch: pa.RecordBatch) -> tuple[int, Any, Any]:
        """Host-side inputs: ``(rows, (images, mapping) or None, spectra or None)`` (numpy; the codecs run
        in :meth:`embed_prepared`). The embed stage's loader runs this ahead of the forward pass."""
        names = batch.schema.names
        img = self._host_images(batch) if C.IMAGE in names else None
        sp = spectra_from_batch(batch) if all(c in names for c in C.MODALITY_COLUMNS["spectrum"]) else None
        return batch.num_rows, img, sp

    def embed(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        return self.embed_prepared(self.prepare(batch))

    def embed_prepared(self, prepared: tuple[int, Any, Any]) -> dict[str, np.ndarray]:
        import torch

        n, host_img, sp = prepared
        has_image, has_spectrum = host_img is not None, sp is not None
        out: dict[str, np.ndarray] = {}
        with torch.inference_mode():
            if has_image:
                img, mapping = host_img
                flux, codec_bands = self._codec_images(img.flux, img.bands, mapping)
                img_rows = np.flatnonzero(img.valid)
                img_tok = self._image_tokens(flux[torch.from_numpy(img_rows)], codec_bands, mapping)
                out["image"] = self._scatter(n, img_rows, {mapping.token_key: img_tok})
            if has_spectrum:
                sp_rows = np.flatnonzero(sp.valid)
                sp_tok = self._spectrum_tokens(sp, sp_rows)
                out["spectrum"] = self._scatter(n, sp_rows, {SPECTRUM_KEY: sp_tok})
            if has_image and has_spectrum and "joint" in self.spec.outputs:
                both = np.intersect1d(img_rows, sp_rows)
                tok = {
                    mapping.token_key: img_tok[np.searchsorted(img_rows, both)],
                    SPECTRUM_KEY: sp_tok[np.searchsorted(sp_rows, both)],
                }
                out["joint"] = self._scatter(n, both, tok)
        return {k: v for k, v in out.items() if k in self.spec.outputs}

    def _scatter(self, n: int, rows: np.ndarray, tokens: dict[str, Any]) -> np.ndarray:
        res = np.full((n, self.dim), np.nan, np.float32)
        if len(rows):
            res[rows] = self.pool(tokens)
        return res


def parse_options(options: dict[str, Any] | None) -> tuple[str, bool, BandMapping | None, str]:
    """``size``, whether it was given, the band mapping and the adapter path."""
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise UsageError(f"aion: unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    from fmb_aion.sizes import check_size

    size = check_size(str(opts.get("size", "base")))
    adapter = str(opts.get("adapter", "") or "")
    bands = str(opts.get("bands", "adapter" if adapter else DEFAULT_MAPPING))
    if bands == "adapter" and not adapter:
        raise UsageError("aion: bands=adapter needs adapter=PATH (a checkpoint from `fmb retrain aion`)")
    if adapter and bands != "adapter":
        raise UsageError(f"aion: adapter=PATH replaces the band mapping; drop bands={bands}")
    return size, "size" in opts, get_mapping(bands), adapter


def load_model(
    spec: ModelSpec, weights: str = "auto", device: str = "cpu", options: dict[str, Any] | None = None, seed: int = 0
) -> AionModel:
    """Loader named by the spec: resolve weights (:mod:`fmb_aion.weights`) and build the model."""
    size, size_given, mapping, adapter_path = parse_options(options)
    adapter, sha = None, ""
    if adapter_path:
        from fmb_aion.adapter import load_adapter

        adapter, _, sha = load_adapter(adapter_path)
    comps = resolve(weights, size, seed, size_given)
    if adapter_path:  # the adapter is the retrained part: its provenance (fmb retrain aion) goes with the weights
        from dataclasses import replace

        from fmb.retrained import retrained_provenance

        prov = retrained_provenance(adapter_path, sha)
        if prov:
            comps = replace(comps, info=replace(comps.info, retrained={**prov, "part": "adapter"}))
    return AionModel(spec, comps, dict(options or {}), mapping, adapter, sha, device)
