"""Contrastive fine-tuning of AstroCLIP on an FMB dataset (``fmb retrain astroclip``).

The heads are trained with the CLIP loss; with ``unfreeze_blocks=k`` so are the last k blocks (and
final norm) of each backbone. AdamW, linear warm-up then cosine decay to 0, gradient-norm clipping,
bf16 autocast on CUDA, early stopping on validation loss. With frozen backbones their tokens are
computed once and kept (when they fit ``token_cache_gb``).

Output folder: ``model.safetensors`` + ``config.json`` (best epoch; usable as ``--weights DIR``),
``history.json``, ``loss.png``, and ``last.safetensors`` + ``state.pt`` to resume.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmb.data import canonical as C
from fmb.errors import UsageError
from fmb.io import write_json
from fmb_astroclip.loading import RETRAIN_CONFIG, RETRAIN_WEIGHTS, resolve, save_checkpoint
from fmb_astroclip.network import AstroClip, clip_loss
from fmb_astroclip.preprocess import image_inputs, spectrum_inputs

LAST_WEIGHTS = "last.safetensors"
STATE = "state.pt"
HISTORY = "history.json"
PLOT = "loss.png"


@dataclass
class RetrainConfig:
    """Everything that defines a retraining run (saved into ``config.json``)."""

    dataset: str = "synthetic"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    size: str | None = None
    weights: str = "auto"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 1.0
    unfreeze_blocks: int = 0
    learnable_scale: bool = False
    val_fraction: float = 0.2
    patience: int = 3
    min_delta: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    token_cache_gb: float = 4.0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise UsageError("retrain: epochs must be >= 1 and batch size >= 2")
        if not 0 < self.val_fraction < 1:
            raise UsageError("retrain: val_fraction must be in (0, 1)")
        if self.unfreeze_blocks < 0:
            raise UsageError("retrain: unfreeze_blocks must be >= 0")


@dataclass
class Pairs:
    """Preprocessed image/spectrum pairs (both modalities present) and their object ids."""

    images: torch.Tensor
    spectra: torch.Tensor
    ids: np.ndarray


def load_pairs(dataset: Any, image_size: int, batch_size: int = 256) -> Pairs:
    """Every object of ``dataset`` that has both modalities, preprocessed."""
    ims, sps, ids = [], [], []
    for batch in dataset.iter_batches(batch_size):
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


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


class Encoder:
    """Batches of pairs -> embeddings; caches frozen backbone tokens when they fit."""

    def __init__(self, net: AstroClip, pairs: Pairs, cfg: RetrainConfig, device: torch.device) -> None:
        self.net, self.pairs, self.device = net, pairs, device
        self.autocast = device.type == "cuda" and cfg.amp
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
            return torch.cat([backbone.forward_tokens(x[i:i + chunk].to(self.device)).float()
                              for i in range(0, len(x), chunk)])

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if self.cached:
                return (self.net.image_encoder.forward_tokens(self.im_tok[idx]),
                        self.net.spectrum_encoder.forward_tokens(self.sp_tok[idx]))
            return self.net(self.pairs.images[idx].to(self.device), self.pairs.spectra[idx].to(self.device))


def evaluate(net: AstroClip, enc: Encoder, idx: np.ndarray, batch_size: int, seed: int) -> tuple[float, float]:
    """Validation CLIP loss (mean over batches, at the fixed scale) and mismatch AUROC."""
    net.eval()
    ims, sps, losses = [], [], []
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            sel = torch.from_numpy(idx[i:i + batch_size])
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


def save_weights(net: AstroClip, path: Path) -> None:
    save_checkpoint(net, path.parent, weights_file=path.name)


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    ax.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("CLIP loss")
    ax.legend()
    ax2 = ax.twinx()
    ax2.plot(ep, [h["val_mismatch_auroc"] for h in history], "s--", color="grey", label="val mismatch AUROC")
    ax2.set_ylabel("mismatch AUROC")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retrain(cfg: RetrainConfig, output: str | Path, dataset: Any, resume: bool = False,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a retraining into ``output``; returns a summary (also in ``config.json``)."""
    cfg.check()
    out = Path(output)
    if (out / STATE).exists() and not resume:
        raise UsageError(f"retrain: {str(out)!r} already holds a run: pass --resume to continue it, or another "
                         "--output")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    loaded = resolve(cfg.weights, cfg.size, cfg.seed)
    net = loaded.net
    if cfg.learnable_scale:
        net.make_scale_learnable()
    net.to(device)
    params = set_trainable(net, cfg.unfreeze_blocks)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    pairs = load_pairs(dataset, net.cfg.image_size)
    n = len(pairs.ids)
    n_val = max(2, int(round(n * cfg.val_fraction)))
    if n - n_val < cfg.batch_size // 2 or n_val < 4:
        raise UsageError(f"retrain: only {n} objects with both modalities: too few for batch size {cfg.batch_size}")
    order = np.random.default_rng(cfg.seed).permutation(n)
    val_idx, train_idx = order[:n_val], order[n_val:]
    bs = min(cfg.batch_size, len(train_idx))
    steps_per_epoch = len(train_idx) // bs
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, total))
    enc = Encoder(net, pairs, cfg, device)

    history: list[dict[str, Any]] = []
    best, bad, start, best_epoch = math.inf, 0, 0, 0
    if resume and (out / STATE).exists():
        from safetensors.torch import load_file

        from fmb.protocol.weights import load_state_dict_strict

        load_state_dict_strict(net, load_file(str(out / LAST_WEIGHTS)), f"astroclip: resume {out / LAST_WEIGHTS}")
        state = torch.load(out / STATE, map_location=device, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        best, bad, start = state["best"], state["bad"], state["epoch"] + 1
        best_epoch = state["best_epoch"]
        history = json.loads((out / HISTORY).read_text())
        log(f"resuming at epoch {start} (best validation loss so far {best:.4f})")
        if bad >= cfg.patience:
            start = cfg.epochs
    else:
        loss0, auc0 = evaluate(net, enc, val_idx, bs, cfg.seed)
        history.append({"epoch": 0, "train_loss": None, "val_loss": loss0, "val_mismatch_auroc": auc0,
                        "lr": 0.0, "seconds": 0.0})
        log(f"epoch 0: val loss {loss0:.4f}, mismatch AUROC {auc0:.3f}")
        best = loss0
        save_weights(net, out / RETRAIN_WEIGHTS)

    summary = {"model": net.cfg.to_dict(), "retrain": asdict(cfg), "base_weights": loaded.weights.to_dict(),
               "n_train": len(train_idx), "n_val": n_val, "dataset_name": getattr(dataset, "name", cfg.dataset),
               "dataset_fingerprint": getattr(dataset, "fingerprint", "")}
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: reproducible across resumes
        perm = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(train_idx))
        _train_mode(net, cfg.unfreeze_blocks)
        losses = []
        for s in range(steps_per_epoch):
            a, b = enc(perm[s * bs:(s + 1) * bs])
            loss = clip_loss(a, b, net.scale())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
        val_loss, auc = evaluate(net, enc, val_idx, bs, cfg.seed)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                        "val_mismatch_auroc": auc, "lr": sched.get_last_lr()[0],
                        "seconds": round(time.perf_counter() - t0, 3)})
        log(f"epoch {epoch + 1}: train {np.mean(losses):.4f}, val {val_loss:.4f}, mismatch AUROC {auc:.3f}")
        if val_loss < best - cfg.min_delta:
            best, bad = val_loss, 0
            best_epoch = epoch + 1
            save_weights(net, out / RETRAIN_WEIGHTS)
        else:
            bad += 1
        save_weights(net, out / LAST_WEIGHTS)
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "best": best, "bad": bad,
                    "epoch": epoch, "best_epoch": best_epoch}, out / STATE)
        write_json(history, out / HISTORY)
        if bad >= cfg.patience:
            log(f"early stop: validation loss has not improved for {bad} epochs")
            break
    write_json(history, out / HISTORY)
    summary["best_epoch"] = best_epoch
    summary["best_val_loss"] = best
    summary["history"] = history
    write_json({k: v for k, v in summary.items() if k != "history"}, out / RETRAIN_CONFIG)
    plot_history(history, out / PLOT)
    return summary
