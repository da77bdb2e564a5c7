"""Contrastive fine-tuning of AstroCLIP on an FMB dataset (``fmb retrain astroclip``), on core's kit
(:mod:`fmb.training`: split by object id, warm-up + cosine schedule, early stopping, history, resume).

The heads are trained with the CLIP loss; with ``unfreeze_blocks=k`` so are the last k blocks (and
final norm) of each backbone. bf16 autocast on CUDA. With frozen backbones their tokens are computed once
and kept (when they fit ``token_cache_gb``). Each evaluation also reports the validation mismatch AUROC.

The run folder holds ``model.safetensors`` + ``config.json`` (the best evaluation; usable as
``--weights FOLDER``) and core's files (history, ``loss.png``, ``retrain.json``, ``state.pt``).
Behaviour changed with the kit (issue 15): the cosine decays to ``lr * min_lr_ratio`` (default 0.1), not to
0; weight decay spares biases and norms; patience counts evaluations (one per epoch unless ``--eval-every``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmb.data import canonical as C
from fmb.errors import UsageError
from fmb_astroclip.commands import AstroClipTraining
from fmb_astroclip.network import AstroClip, clip_loss
from fmb_astroclip.preprocess import image_inputs, spectrum_inputs
from fmb_astroclip.weights import RETRAIN_WEIGHTS, resolve, save_checkpoint


@dataclass
class Pairs:
    """Preprocessed image/spectrum pairs (both modalities present) and their object ids."""

    images: torch.Tensor
    spectra: torch.Tensor
    ids: np.ndarray


def load_pairs(dataset: Any, image_size: int, batch_size: int = 256, max_objects: int = 0) -> Pairs:
    """Every object of ``dataset`` (of its first ``max_objects`` when > 0) with both modalities, preprocessed."""
    ims, sps, ids = [], [], []
    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    for batch in dataset.iter_batches(batch_size, start=0, stop=stop):
        im, ok_i = image_inputs(batch, image_size)
        sp, ok_s = spectrum_inputs(batch)
        ok = torch.from_numpy(ok_i & ok_s)
        ims.append(im[ok])
        sps.append(sp[ok])
        ids.append(batch.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[ok.numpy()])
    return Pairs(torch.cat(ims), torch.cat(sps), np.concatenate(ids))


def mismatch_auroc(image: torch.Tensor, spectrum: torch.Tensor, seed: int = 0) -> float:
    """AUROC of ``-cos(image, spectrum)`` at telling swapped pairs (half the objects) from true ones."""
    from sklearn.metrics import roc_auc_score

    n = len(image)
    rng = np.random.default_rng(seed)
    swapped = rng.permutation(n)[: n // 2]
    partner = np.arange(n)
    partner[swapped] = np.roll(swapped, 1)  # a cycle: no swapped object keeps its own spectrum
    a = torch.nn.functional.normalize(image.float(), dim=-1)
    b = torch.nn.functional.normalize(spectrum.float(), dim=-1)
    cos = (a * b[torch.from_numpy(partner)]).sum(-1).numpy()
    y = np.zeros(n, bool)
    y[swapped] = True
    return float(roc_auc_score(y, -cos))


def set_trainable(net: AstroClip, unfreeze_blocks: int) -> list[torch.nn.Parameter]:
    """Heads (and the last ``unfreeze_blocks`` backbone blocks + final norms) train; the rest is frozen."""
    for p in net.parameters():
        p.requires_grad_(False)
    train: list[torch.nn.Module] = []
    for enc in (net.image_encoder, net.spectrum_encoder):
        train += [enc.cross_attention, enc.mlp]
        if unfreeze_blocks:
            bb = enc.backbone
            train += bb.block_list[-unfreeze_blocks:]
            train.append(bb.norm if hasattr(bb, "norm") else bb.final_layernorm)
    params = [p for m in train for p in m.parameters()]
    if net.cfg.learnable_logit_scale:
        params.append(net.logit_scale)
    for p in params:
        p.requires_grad_(True)
    return params


class Encoder:
    """Batches of pairs -> embeddings; caches frozen backbone tokens when they fit."""

    def __init__(self, net: AstroClip, pairs: Pairs, cfg: AstroClipTraining, device: torch.device) -> None:
        self.net, self.pairs, self.device = net, pairs, device
        self.autocast = device.type == "cuda" and not cfg.no_amp
        n, c = len(pairs.ids), net.cfg
        tokens = (c.image_size // c.vit_patch) ** 2 * c.vit_dim + (c.spectrum_npix // 10) * c.spec_dim
        self.cached = cfg.unfreeze_blocks == 0 and n * tokens * 4 / 1e9 <= cfg.token_cache_gb
        if self.cached:
            self.im_tok = self._tokens(net.image_encoder.backbone, pairs.images)
            self.sp_tok = self._tokens(net.spectrum_encoder.backbone, pairs.spectra)

    @torch.no_grad()
    def _tokens(self, backbone: torch.nn.Module, x: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        backbone.eval()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return torch.cat(
                [backbone.forward_tokens(x[i : i + chunk].to(self.device)).float() for i in range(0, len(x), chunk)]
            )

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if self.cached:
                return (
                    self.net.image_encoder.forward_tokens(self.im_tok[idx]),
                    self.net.spectrum_encoder.forward_tokens(self.sp_tok[idx]),
                )
            return self.net(self.pairs.images[idx].to(self.device), self.pairs.spectra[idx].to(self.device))


def evaluate(net: AstroClip, enc: Encoder, idx: np.ndarray, batch_size: int, seed: int) -> tuple[float, float]:
    """Validation CLIP loss (mean over batches, at the fixed scale) and mismatch AUROC."""
    net.eval()
    ims, sps, losses = [], [], []
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            sel = torch.from_numpy(idx[i : i + batch_size])
            a, b = enc(sel)
            if len(sel) > 1:
                losses.append(float(clip_loss(a, b, net.cfg.logit_scale)) * len(sel))
            ims.append(a.float().cpu())
            sps.append(b.float().cpu())
    loss = sum(losses) / len(idx)
    return loss, mismatch_auroc(torch.cat(ims), torch.cat(sps), seed)


def _train_mode(net: AstroClip, unfreeze_blocks: int) -> None:
    net.train()
    if not unfreeze_blocks:  # frozen backbones stay in eval mode
        net.image_encoder.backbone.eval()
        net.spectrum_encoder.backbone.eval()


class AstroClipTask:
    """The :class:`fmb.training.Task` of AstroCLIP: image/spectrum pairs, the CLIP loss."""

    def __init__(self, cfg: AstroClipTraining, dataset: Any, weights: str, device: str) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        loaded = resolve(weights, cfg.size, cfg.seed)
        net = loaded.net
        if cfg.learnable_scale:
            net.make_scale_learnable()
        self.module, self.weights = net.to(self.device), loaded.weights
        self.params = set_trainable(net, cfg.unfreeze_blocks)
        pairs = load_pairs(dataset, net.cfg.image_size, max_objects=cfg.max_objects)
        if len(pairs.ids) < 8:
            raise UsageError(f"retrain astroclip: only {len(pairs.ids)} objects with both modalities (8 needed)")
        self.ids = pairs.ids
        self.enc = Encoder(net, pairs, cfg, self.device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.params

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        _train_mode(self.module, self.cfg.unfreeze_blocks)
        a, b = self.enc(torch.from_numpy(idx))
        return clip_loss(a, b, self.module.scale())

    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        loss, auc = evaluate(self.module, self.enc, idx, self.cfg.batch_size, self.cfg.seed)
        return {"val_loss": loss, "val_mismatch_auroc": auc}

    def save(self, folder: Path) -> Path:
        save_checkpoint(
            self.module, folder, extra={"retrain": self.cfg.to_dict(), "base_weights": self.weights.to_dict()}
        )
        return folder / RETRAIN_WEIGHTS


def make_task(cfg: AstroClipTraining, dataset: Any, weights: str, device: str) -> AstroClipTask:
    """Build the network ``weights`` asks for (core's policy) and preprocess ``dataset``'s pairs."""
    return AstroClipTask(cfg, dataset, weights, device)
