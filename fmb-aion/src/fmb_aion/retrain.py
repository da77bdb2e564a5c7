"""``fmb retrain aion``: the Euclid -> HSC adapter (:mod:`fmb_aion.adapter`) trained on core's kit
(:mod:`fmb.training`) with its cycle loss through the frozen AION image codec (``--part adapter``, the
default), AION's transformer trained on cross-modal token prediction (``--part encoder``,
:class:`AionEncoderTask`), or AION's two codecs trained on reconstruction through their quantisers (``--part
codecs``, :class:`AionCodecTask`); for the last two the run folder is an aion-base snapshot for ``--weights
FOLDER`` (AION's own order: ``--part codecs``, then ``--part encoder --weights CODECS_FOLDER``).

The run folder holds ``adapter.pt`` (the best evaluation; ``--model aion:adapter=FOLDER`` loads it) and core's
files. Behaviour changed with the kit (issue 15): objects are split into training and validation sets (by
object id), the best adapter by validation cycle loss is kept, AdamW with core's warm-up + cosine schedule
replaces a constant Adam rate, and the default output is a run folder under ``$FMB_HOME/retrained/aion``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmb.data import canonical as C
from fmb.errors import DataError, UsageError
from fmb.training import batched_mean
from fmb_aion.adapter import EuclidHSCAdapter, freeze, save_adapter
from fmb_aion.commands import AionTraining

ADAPTER_FILE = "adapter.pt"


def load_images(dataset: Any, max_objects: int = 0, chunk: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """Euclid images (VIS, Y, J, H; nanomaggies at the adapter's scale) of every usable object, and their ids."""
    from fmb_aion.bands import ADAPTER, EUCLID_BANDS
    from fmb_aion.preprocess import images_from_batch

    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    xs, ids = [], []
    for b in dataset.iter_batches(chunk, start=0, stop=stop):
        img = images_from_batch(b, ADAPTER.pixel_scale)
        order = [img.bands.index(x) for x in EUCLID_BANDS]
        xs.append(torch.from_numpy(img.flux[img.valid][:, order]))
        ids.append(b.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[img.valid])
    if not xs or sum(len(x) for x in xs) < 2:
        raise DataError(f"retrain aion: dataset {dataset.name!r} has fewer than 2 usable Euclid images")
    return torch.cat(xs), np.concatenate(ids)


class AionAdapterTask:
    """The :class:`fmb.training.Task` of the adapter: the image codec is frozen, the adapter trains."""

    def __init__(self, cfg: AionTraining, dataset: Any, weights: str, device: str) -> None:
        from fmb_aion.weights import resolve

        if cfg.size not in (None, "base", "tiny"):
            raise UsageError(f"retrain aion: size {cfg.size!r} is not base or tiny")
        self.cfg, self.device, self.dataset = cfg, device, dataset
        self.comps = resolve(weights, cfg.size or "base", cfg.seed, size_given=cfg.size is not None)
        self.codec = freeze(self.comps.image_codec).to(device)
        self.weights = self.comps.info
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.module = EuclidHSCAdapter().to(device)
        self.images, self.ids = load_images(dataset, cfg.max_objects)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.module.parameters())

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        self.module.train()
        return self.module.cycle_loss(self.images[torch.from_numpy(idx)].to(self.device), self.codec)

    @torch.no_grad()
    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        """Mean cycle loss over ``idx`` (weighted by batch size)."""
        self.module.eval()
        return {
            "val_loss": batched_mean(
                idx,
                self.cfg.batch_size,
                lambda b: float(self.module.cycle_loss(self.images[torch.from_numpy(b)].to(self.device), self.codec)),
            )
        }

    def save(self, folder: Path) -> Path:
        meta = {
            "dataset": self.dataset.name,
            "dataset_fingerprint": getattr(self.dataset, "fingerprint", ""),
            "objects": len(self.ids),
            "config": self.cfg.to_dict(),
            "codec_weights": self.weights.to_dict(),
            "codec_size": self.comps.size,
        }
        return save_adapter(self.module, folder / ADAPTER_FILE, meta)


# ---------------------------------------------------------------------- part=encoder: AION's own encoder/decoder


def paired_batches(model: Any, dataset: Any, max_objects: int = 0, chunk: int = 64) -> Iterator[tuple]:
    """``(batch, flux, codec bands, band mapping, spectra, rows)`` for each batch of the first ``max_objects``
    objects (0: all) of ``dataset`` that has objects with both an image and a spectrum (``rows``: their
    positions in the batch), as ``fmb run`` gives them to the codecs. Raises DataError (one line) when the
    batches map to different image bands (their tokens would be mixed under one key), and, once exhausted,
    when fewer than 2 objects had both."""
    from fmb_aion.preprocess import spectra_from_batch

    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    bands, modality, n = None, None, 0
    for b in dataset.iter_batches(chunk, start=0, stop=stop):
        flux, codec_bands, mapping, valid = model.codec_inputs(b)
        sp = spectra_from_batch(b)
        rows = np.flatnonzero(valid & sp.valid)
        if not len(rows):
            continue
        if bands is not None and (list(codec_bands) != bands or mapping.modality != modality):
            raise DataError(f"retrain aion: dataset {dataset.name!r} mixes image bands ({bands} and {codec_bands})")
        bands, modality, n = list(codec_bands), mapping.modality, n + len(rows)
        yield b, flux, codec_bands, mapping, sp, rows
    if n < 2:
        raise DataError(f"retrain aion: dataset {dataset.name!r} has fewer than 2 objects with image and spectrum")


def load_tokens(model: Any, dataset: Any, max_objects: int = 0, chunk: int = 64) -> tuple[dict, np.ndarray, Any]:
    """Image and spectrum tokens (through ``model``'s frozen codecs and band mapping, as ``fmb run`` makes
    them) of every object with both, their ids, and the image modality class."""
    from fmb_aion.model import SPECTRUM_KEY
    from fmb_aion.tokens import modality_class

    img, spec, ids, key, mod = [], [], [], None, None
    with torch.inference_mode():
        for b, flux, bands, mapping, sp, rows in paired_batches(model, dataset, max_objects, chunk):
            key, mod = mapping.token_key, modality_class(mapping.modality)
            img.append(model._image_tokens(flux[torch.from_numpy(rows)], bands, mapping).cpu())
            spec.append(model._spectrum_tokens(sp, rows).cpu())
            ids.append(b.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[rows])
    return {key: torch.cat(img), SPECTRUM_KEY: torch.cat(spec)}, np.concatenate(ids), mod


#: share of a modality's tokens hidden from the encoder in the masked (within-modality) terms
MASK_FRACTION = 0.5
OBJECTIVES = ("cross", "cross+masked")
PARTS = ("adapter", "encoder", "codecs")


class AionEncoderTask:
    """The :class:`fmb.training.Task` of AION's transformer (``part=encoder``): the codecs are frozen (their
    tokens are computed once); the encoder and decoder learn AION's token prediction (cross-entropy over the
    codebook), the mean of these terms:

    - cross-modal (``objective=cross`` and ``cross+masked``): the spectrum's tokens from the image's and the
      image's from the spectrum's;
    - masked (``objective=cross+masked``, the default): each modality's hidden tokens from a random
      :data:`MASK_FRACTION` of its tokens left visible (the loss on the hidden ones only).

    AION (Parker et al. 2025, after 4M, Mizrahi et al. 2023) trains on random visible/target token subsets of
    every modality, the same modality included; ``cross`` alone teaches the image encoder only what predicts the
    spectrum, and measured on the held-out split it lowered the image systems' AUROC (docs/retraining.md). The
    encoder is what ``fmb run`` pools into embeddings. The result is an aion-base snapshot folder
    (``--weights FOLDER``). Masks come from torch's global generator in training (``fmb.training.fit`` seeds it
    per step) and from a generator seeded with ``seed`` in :meth:`evaluate`, so validation losses are
    reproducible.
    """

    def __init__(self, cfg: AionTraining, dataset: Any, weights: str, device: str) -> None:
        from aion.modalities import DESISpectrum

        from fmb.plugins import registry

        if cfg.objective not in OBJECTIVES:
            raise UsageError(f"retrain aion: objective {cfg.objective!r} is not {' or '.join(OBJECTIVES)}")
        options = {"size": cfg.size} if cfg.size else {}
        self.cfg, self.device = cfg, device
        self.model = registry().load_model("aion", weights=weights, device=device, options=options, seed=cfg.seed)
        self.module, self.weights = self.model.aion, self.model.weights
        for codec in (self.model.image_codec, self.model.spectrum_codec):
            codec.eval().requires_grad_(False)
        self.tokens, self.ids, image_mod = load_tokens(self.model, dataset, cfg.max_objects)
        (self.image_key,) = [k for k in self.tokens if k != DESISpectrum.token_key]
        self.directions = ((self.image_key, DESISpectrum), (DESISpectrum.token_key, image_mod))
        self.masked = (
            ((self.image_key, image_mod), (DESISpectrum.token_key, DESISpectrum))
            if cfg.objective == "cross+masked"
            else ()
        )

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def _loss(self, idx: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        ce = torch.nn.functional.cross_entropy
        sel = torch.from_numpy(idx)
        losses = []
        for source, target in self.directions:
            logits = self.module({source: self.tokens[source][sel].to(self.device)}, [target])[target.token_key]
            truth = self.tokens[target.token_key][sel].to(self.device).long()
            losses.append(ce(logits.flatten(0, 1).float(), truth.flatten()))
        for key, mod in self.masked:
            tok = self.tokens[key][sel].to(self.device)
            hidden = hidden_mask(tok.shape[0], tok.shape[1], MASK_FRACTION, generator).to(self.device)
            logits = self.module({key: tok}, [mod], input_mask={key: hidden})[key]
            losses.append(ce(logits[hidden].float(), tok[hidden].long()))
        return sum(losses) / len(losses)

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        self.module.train()
        return self._loss(idx)

    @torch.no_grad()
    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        """Mean token cross-entropy of the objective over ``idx`` (weighted by batch size; masks seeded)."""
        self.module.eval()
        gen = torch.Generator().manual_seed(self.cfg.seed)
        return {"val_loss": batched_mean(idx, self.cfg.batch_size, lambda b: float(self._loss(b, gen)))}

    def save(self, folder: Path) -> Path:
        """The aion-base snapshot (config.json, model.safetensors, codecs/) in ``folder``."""
        return self.model.save_weights(folder)

    def weights_sha256(self, folder: Path) -> str:
        """The hash ``--weights FOLDER`` records (:func:`fmb_aion.weights.folder_sha256`)."""
        from fmb_aion.weights import folder_sha256

        return folder_sha256(Path(folder))


def hidden_mask(n: int, length: int, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, length]`` bool, True for the tokens hidden from the encoder: in each row exactly
    ``round(length * fraction)`` (at least 1, at most ``length - 1``) positions, uniformly at random."""
    k = min(length - 1, max(1, round(length * fraction)))
    order = torch.rand(n, length, generator=generator).argsort(dim=1)
    return torch.zeros(n, length, dtype=torch.bool).scatter_(1, order[:, :k], True)


# ---------------------------------------------------------------------- part=codecs: AION's image and spectrum codecs


def load_codec_data(model: Any, dataset: Any, max_objects: int = 0, chunk: int = 64) -> tuple[dict, np.ndarray]:
    """What the codecs read (as ``fmb run`` gives it to them) for every object with an image and a spectrum:
    ``{"image": [N, B, 96, 96] flux in the codec's units, "bands": codec band names, "modality": image modality
    name, "sigma": [N, B] per-image per-band noise, "flux"/"ivar"/"mask"/"wavelength": [N, L] spectra}`` and
    the object ids. ``sigma`` is :func:`image_noise` (the survey carries no image variance)."""
    parts: dict[str, list] = {k: [] for k in ("image", "flux", "ivar", "mask", "wavelength", "ids")}
    bands, modality = None, None
    for b, flux, codec_bands, mapping, sp, rows in paired_batches(model, dataset, max_objects, chunk):
        bands, modality = list(codec_bands), mapping.modality
        parts["image"].append(flux[torch.from_numpy(rows)].detach().cpu().float())
        for k in ("flux", "ivar", "mask", "wavelength"):
            parts[k].append(getattr(sp, k)[rows])
        parts["ids"].append(b.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[rows])
    image = torch.cat(parts["image"])
    sigma = image_noise(image.numpy())
    data = {
        "image": image,
        "bands": bands,
        "modality": modality,
        "sigma": torch.from_numpy(sigma),
        "flux": torch.from_numpy(np.concatenate(parts["flux"])),
        "ivar": torch.from_numpy(np.concatenate(parts["ivar"])),
        "mask": torch.from_numpy(np.concatenate(parts["mask"])),
        "wavelength": torch.from_numpy(np.concatenate(parts["wavelength"])),
    }
    return data, np.concatenate(parts["ids"])


def image_noise(image: np.ndarray) -> np.ndarray:
    """``[N, B]`` pixel noise of ``image`` ``[N, B, H, W]``, per image and band, from its negative pixels: sources
    are positive, so below zero there is (almost) only sky noise, and for zero-mean Gaussian noise the median of
    ``|x|`` over the negative pixels is the half-normal median ``0.6745 sigma`` (``scipy.stats.halfnorm``). The
    median absolute deviation of all pixels does not do: resampled stamps are zero-padded (most pixels exactly
    0, MAD 0) and the source fills the rest. A band with no negative pixel gets the band's median noise over
    the images; every value is floored at 1e-3 of that median (and above 0), so a blank stamp cannot divide by 0.
    """
    from scipy.stats import halfnorm

    flat = image.reshape(image.shape[0], image.shape[1], -1)
    neg = np.where(flat < 0, -flat, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no negative pixel) are filled below
        sigma = np.nanmedian(neg, axis=2) / halfnorm.ppf(0.5)
        typical = np.nanmedian(sigma, axis=0, keepdims=True)
    scale = np.abs(flat).max(axis=(0, 2))[None, :]
    typical = np.where(np.isfinite(typical) & (typical > 0), typical, np.maximum(1e-3 * scale, 1e-12))
    sigma = np.where(np.isfinite(sigma), sigma, typical)
    return np.maximum(sigma, np.maximum(1e-3 * typical, 1e-12)).astype(np.float32)


class AionCodecTask:
    """The :class:`fmb.training.Task` of AION's two codecs (``part=codecs``), trained as AION's tokenizers are:
    autoencoders through their quantiser (the straight-through estimator of FSQ for images, LFQ for spectra) on
    reconstruction, the transformer untouched. The loss is the sum of

    - image: AION's inverse-variance weighted reconstruction NLL (``1/2 ||Sigma^-1/2 (x - D(E(x)))||^2``,
      AION-1 docs "Image Tokenization"), mean over pixels, in the codec's flux units, with the noise ``Sigma`` of
      :func:`load_codec_data` (one sigma per image and band);
    - spectrum: the chi-square ``1/2 ivar (f - D(E(f)))^2`` over the unmasked observed pixels (mean), the
      decoder interpolated back to the observed wavelengths and rescaled by the quantised normalisation (the
      codec's own ``_decode``), plus the LFQ's auxiliary loss (entropy and commitment, the quantiser's own
      weights) in training.

    ``evaluate`` reports ``val_loss`` (image + spectrum, without the auxiliary term, which is 0 in evaluation)
    and ``val_image``/``val_spectrum``. The result is an aion-base snapshot folder (``--weights FOLDER``) whose
    transformer is the starting one: ``fmb retrain aion --part encoder --weights FOLDER`` then trains the
    transformer on the new tokens (AION's own order: tokenizers first, frozen, then the transformer).
    """

    def __init__(self, cfg: AionTraining, dataset: Any, weights: str, device: str) -> None:
        from fmb.plugins import registry
        from fmb_aion.tokens import fix_hsc_decode

        options = {"size": cfg.size} if cfg.size else {}
        self.cfg, self.device = cfg, device
        self.model = registry().load_model("aion", weights=weights, device=device, options=options, seed=cfg.seed)
        self.weights = self.model.weights
        self.model.aion.requires_grad_(False)
        fix_hsc_decode(self.model.image_codec)
        self.module = torch.nn.ModuleList([self.model.image_codec, self.model.spectrum_codec])
        self.module.requires_grad_(True)
        with torch.inference_mode():
            self.data, self.ids = load_codec_data(self.model, dataset, cfg.max_objects)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def _losses(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        from aion.modalities import DESISpectrum

        d, sel, dev = self.data, torch.from_numpy(idx), self.device
        image_codec, spectrum_codec = self.module
        x = d["image"][sel].to(dev)
        image = image_nll(image_codec, x, list(d["bands"]), d["modality"], d["sigma"][sel].to(dev))

        flux, ivar, mask = d["flux"][sel].to(dev), d["ivar"][sel].to(dev), d["mask"][sel].to(dev)
        wave = d["wavelength"][sel].to(dev)
        sp = DESISpectrum(flux=flux.clone(), ivar=ivar.clone(), mask=mask.clone(), wavelength=wave.clone())
        emb, norm = spectrum_codec._encode(sp)
        z, aux, _ = spectrum_codec.quantizer(emb)
        out = spectrum_codec._decode(z, normalization=norm, wavelength=wave).flux
        good = (~mask & (ivar > 0)).float()
        spectrum = 0.5 * (ivar * (flux - out) ** 2 * good).sum() / good.sum().clamp_min(1.0)
        return {"image": image, "spectrum": spectrum, "aux": aux.sum()}

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        self.module.train()
        parts = self._losses(idx)
        return parts["image"] + parts["spectrum"] + parts["aux"]

    @torch.no_grad()
    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        """Mean reconstruction losses over ``idx`` (weighted by batch size): ``val_loss`` = image + spectrum."""
        self.module.eval()
        sums, n = {"image": 0.0, "spectrum": 0.0}, 0
        for lo in range(0, len(idx), self.cfg.batch_size):
            b = idx[lo : lo + self.cfg.batch_size]
            parts = self._losses(b)
            for k in sums:
                sums[k] += float(parts[k]) * len(b)
            n += len(b)
        out = {f"val_{k}": v / max(n, 1) for k, v in sums.items()}
        out["val_loss"] = out["val_image"] + out["val_spectrum"]
        return out

    def save(self, folder: Path) -> Path:
        """The aion-base snapshot (config.json, model.safetensors, codecs/) in ``folder``."""
        self.module.eval()
        return self.model.save_weights(folder)

    def weights_sha256(self, folder: Path) -> str:
        """The hash ``--weights FOLDER`` records (:func:`fmb_aion.weights.folder_sha256`)."""
        from fmb_aion.weights import folder_sha256

        return folder_sha256(Path(folder))


def image_nll(codec: Any, x: torch.Tensor, bands: list[str], modality: str, sigma: torch.Tensor) -> torch.Tensor:
    """AION's inverse-variance weighted image reconstruction loss, ``1/2 mean(((x - D(E(x))) / sigma)^2)``,
    taken in the codec's range-compressed space where its decoder works, ``c(f) = m a asinh(f / a)`` of the
    survey-rescaled flux ``f`` (the codec's ``_range_compress``: ``a`` = ``range_compression_factor``, ``m`` =
    ``mult_factor``), with each pixel's noise carried through the compression to first order,
    ``sigma_c = sigma_f c'(f) = sigma_f m / sqrt(1 + (f / a)^2)``: for small residuals it is the flux-space NLL,
    and a random decoder cannot overflow it (decoding back to flux applies ``sinh``, which a random decoder's
    output overflows to inf).

    ``x``: ``[N, B, 96, 96]`` flux in the codec's units for ``bands``; ``sigma``: ``[N, B]`` noise in the same
    units. Gradients flow to the encoder, the quantiser's straight-through estimate and the decoder."""
    from fmb_aion.tokens import modality_class

    survey = codec._get_survey(bands)
    with torch.no_grad():
        scale = float(codec.rescaler.convert_zeropoint(27.0)) if survey == "HSC" else 1.0
        f = codec.clamp(codec.center_crop(x).clone(), bands) / scale
        target = codec._range_compress(f)
        a, m = codec.range_compression_factor, codec.mult_factor
        sigma_c = (sigma[:, :, None, None] / scale) * m / torch.sqrt(1.0 + (f / a) ** 2)
    z = codec.quantizer.quantize(codec._encode(modality_class(modality)(flux=x.clone(), bands=list(bands))))
    side = int(z.shape[-1] ** 0.5)
    raw = codec.decoder(codec.post_quant_proj(z.reshape(z.shape[0], z.shape[1], side, side)))
    full = torch.ones((z.shape[0], codec.image_padder.nbands), device=z.device, dtype=torch.bool)
    pred = codec.image_padder.backward(codec.subsample_out(raw, full), bands)
    return 0.5 * (((target - pred) / sigma_c) ** 2).mean()


def make_task(cfg: AionTraining, dataset: Any, weights: str, device: str) -> Any:
    """Load the weights ``weights`` asks for (core's policy) and the data of ``dataset``: the adapter's images
    (``part=adapter``) or the tokens of both modalities (``part=encoder``)."""
    if cfg.part not in PARTS:
        raise UsageError(f"retrain aion: --part {cfg.part!r} is not one of {', '.join(PARTS)}")
    if cfg.part == "encoder":
        return AionEncoderTask(cfg, dataset, weights, device)
    if cfg.part == "codecs":
        return AionCodecTask(cfg, dataset, weights, device)
    return AionAdapterTask(cfg, dataset, weights, device)
