"""``fmb retrain aion``: the Euclid -> HSC adapter (:mod:`fmb_aion.adapter`) trained on core's kit
(:mod:`fmb.training`) with its cycle loss through the frozen AION image codec (``--part adapter``, the
default), or AION's transformer trained on cross-modal token prediction (``--part encoder``,
:class:`AionEncoderTask`; the run folder is then an aion-base snapshot for ``--weights FOLDER``).

The run folder holds ``adapter.pt`` (the best evaluation; ``--model aion:adapter=FOLDER`` loads it) and core's
files. Behaviour changed with the kit (issue 15): objects are split into training and validation sets (by
object id), the best adapter by validation cycle loss is kept, AdamW with core's warm-up + cosine schedule
replaces a constant Adam rate, and the default output is a run folder under ``$FMB_HOME/retrained/aion``.
"""

from __future__ import annotations

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


def load_tokens(model: Any, dataset: Any, max_objects: int = 0, chunk: int = 64) -> tuple[dict, np.ndarray, Any]:
    """Image and spectrum tokens (through ``model``'s frozen codecs and band mapping, as ``fmb run`` makes
    them) of every object with both, their ids, and the image modality class."""
    from fmb_aion.model import SPECTRUM_KEY
    from fmb_aion.preprocess import spectra_from_batch
    from fmb_aion.tokens import modality_class

    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    img, spec, ids, key, mod = [], [], [], None, None
    with torch.inference_mode():
        for b in dataset.iter_batches(chunk, start=0, stop=stop):
            flux, bands, mapping, valid = model.codec_inputs(b)
            sp = spectra_from_batch(b)
            rows = np.flatnonzero(valid & sp.valid)
            if not len(rows):
                continue
            key, mod = mapping.token_key, modality_class(mapping.modality)
            img.append(model._image_tokens(flux[torch.from_numpy(rows)], bands, mapping).cpu())
            spec.append(model._spectrum_tokens(sp, rows).cpu())
            ids.append(b.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[rows])
    if sum(len(i) for i in ids) < 2:
        raise DataError(f"retrain aion: dataset {dataset.name!r} has fewer than 2 objects with image and spectrum")
    return {key: torch.cat(img), SPECTRUM_KEY: torch.cat(spec)}, np.concatenate(ids), mod


#: share of a modality's tokens hidden from the encoder in the masked (within-modality) terms
MASK_FRACTION = 0.5
OBJECTIVES = ("cross", "cross+masked")


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


def make_task(cfg: AionTraining, dataset: Any, weights: str, device: str) -> Any:
    """Load the weights ``weights`` asks for (core's policy) and the data of ``dataset``: the adapter's images
    (``part=adapter``) or the tokens of both modalities (``part=encoder``)."""
    if cfg.part == "encoder":
        return AionEncoderTask(cfg, dataset, weights, device)
    if cfg.part != "adapter":
        raise UsageError(f"retrain aion: part {cfg.part!r} is not adapter or encoder")
    return AionAdapterTask(cfg, dataset, weights, device)
