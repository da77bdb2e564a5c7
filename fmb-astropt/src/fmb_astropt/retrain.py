"""Continue training an AstroPT network on a data set, as astropt's training scripts do.

Loss: astropt's own next-token Huber loss (``GPT.forward`` with targets; the first modality is
shifted by one token, the next modality is predicted from the token before it). AdamW (betas
0.9/0.95, weight decay on >= 2-D parameters only), linear warm-up then cosine decay to a tenth of
the peak rate, gradient clipping, and early stopping on the validation loss (the best state is
kept). The result is a ``ckpt.pt`` in the official format (``--weights PATH`` loads it) and a
``history.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.errors import ModelError
from fmb.io import write_json
from fmb_astropt.checkpoint import model_args_of, save_checkpoint
from fmb_astropt.config import IMAGES, SPECTRA
from fmb_astropt.model import AstroPTModel


@dataclass
class RetrainConfig:
    """Training hyper-parameters (the defaults suit a few thousand objects on a CPU)."""

    max_steps: int = 500
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    eval_every: int = 25
    patience: int = 4
    min_delta: float = 0.0
    seed: int = 0
    max_objects: int = 0  # 0 = the whole data set

    def lr_at(self, step: int) -> float:
        """Linear warm-up to ``lr``, then cosine decay to ``lr / 10`` at ``max_steps``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        ratio = min(1.0, (step - self.warmup) / max(1, self.max_steps - self.warmup))
        return self.lr / 10 + 0.5 * (1 + math.cos(math.pi * ratio)) * (self.lr - self.lr / 10)


def collect_tokens(model: AstroPTModel, dataset: Dataset, max_objects: int = 0,
                   chunk: int = 256) -> dict[str, torch.Tensor]:
    """Every usable object's tokens (float16 on the CPU); rows without a spectrum are dropped
    when the network also models spectra."""
    want_spec = SPECTRA in model.modalities
    if want_spec and "spectrum" not in dataset.modalities:
        raise ModelError(f"astropt: the network models spectra but dataset {dataset.name!r} has none")
    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in dataset.iter_batches(chunk, start=0, stop=stop):
        if C.IMAGE not in batch.schema.names:
            raise ModelError(f"astropt: dataset {dataset.name!r} has no images")
        ti, pi = model.image_inputs(batch)
        cols = {IMAGES: ti.cpu().half(), f"{IMAGES}_positions": pi.cpu()}
        if want_spec:
            ts, ps, valid = model.spectrum_inputs(batch)
            keep = torch.from_numpy(valid)
            cols = {k: v[keep] for k, v in cols.items()}
            cols[SPECTRA], cols[f"{SPECTRA}_positions"] = ts.cpu()[keep].half(), ps.cpu()[keep]
        for k, v in cols.items():
            parts.setdefault(k, []).append(v)
    data = {k: torch.cat(v) for k, v in parts.items()}
    if not data or len(data[IMAGES]) < 4:
        raise ModelError(f"astropt: dataset {dataset.name!r} has fewer than 4 usable objects to train on")
    return data


def inputs_targets(data: dict[str, torch.Tensor], idx: torch.Tensor, names: list[str],
                   device: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """astropt's X/Y: the first modality predicts its own next token; later ones are predicted whole."""
    X: dict[str, torch.Tensor] = {}
    Y: dict[str, torch.Tensor] = {}
    for i, name in enumerate(names):
        tok = data[name][idx].to(device, torch.float32)
        pos = data[f"{name}_positions"][idx].to(device)
        pos = pos if pos.dtype == torch.long else pos.float()
        X[name], X[f"{name}_positions"], Y[name] = tok, pos, (tok[:, 1:] if i == 0 else tok)
        if len(names) == 1:
            X[name], X[f"{name}_positions"] = tok[:, :-1], pos[:, :-1]
    return X, Y


def _optimizer(net: torch.nn.Module, cfg: RetrainConfig) -> torch.optim.Optimizer:
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


@torch.no_grad()
def evaluate(net: torch.nn.Module, data: dict[str, torch.Tensor], idx: torch.Tensor, names: list[str],
             batch_size: int, device: str) -> float:
    """Mean loss over ``idx`` (weighted by batch size)."""
    net.eval()
    total, count = 0.0, 0
    for s in range(0, len(idx), batch_size):
        b = idx[s: s + batch_size]
        X, Y = inputs_targets(data, b, names, device)
        _, loss = net(X, targets=Y)
        total, count = total + float(loss) * len(b), count + len(b)
    return total / max(count, 1)


def retrain(model: AstroPTModel, dataset: Dataset, out_dir: str | Path, cfg: RetrainConfig,
            progress: Callable[[int], None] | None = None, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``model.net`` in place; write ``ckpt.pt`` and ``history.json`` under ``out_dir``; return the history."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    net, device = model.net, model.device
    names = list(net.modality_registry.names())
    data = collect_tokens(model, dataset, cfg.max_objects)
    n = len(data[IMAGES])
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n, generator=gen)
    n_val = min(n - 2, max(2, round(cfg.val_fraction * n)))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    opt = _optimizer(net, cfg)
    torch.manual_seed(cfg.seed)
    history: dict[str, Any] = {"config": asdict(cfg), "n_train": len(train_idx), "n_val": n_val,
                               "modalities": names, "model": model.settings(), "source": source or {},
                               "evals": [], "train_loss": []}
    best = evaluate(net, data, val_idx, names, cfg.batch_size, device)
    history["evals"].append({"step": 0, "val_loss": best})
    history["initial_val_loss"] = best
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    best_step, bad, stop_reason, order, pos = 0, 0, "max_steps", torch.empty(0, dtype=torch.long), 0
    for step in range(cfg.max_steps):
        if pos + cfg.batch_size > len(order):
            order, pos = train_idx[torch.randperm(len(train_idx), generator=gen)], 0
        b = order[pos: pos + cfg.batch_size]
        pos += cfg.batch_size
        lr = cfg.lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        X, Y = inputs_targets(data, b, names, device)
        _, loss = net(X, targets=Y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        history["train_loss"].append({"step": step + 1, "loss": loss.item(), "lr": lr})
        if progress:
            progress(1)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.max_steps:
            val = evaluate(net, data, val_idx, names, cfg.batch_size, device)
            history["evals"].append({"step": step + 1, "val_loss": val})
            if val < best - cfg.min_delta:
                best, best_step, bad = val, step + 1, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= cfg.patience:
                    stop_reason = f"early stopping: no improvement in {cfg.patience} evaluations"
                    break
    net.load_state_dict(best_state)
    net.eval()
    ckpt = save_checkpoint(out / "ckpt.pt", net, model_args_of(net), optimizer=opt, iter_num=best_step,
                           best_val_loss=best, config={"fmb_retrain": asdict(cfg), "dataset": dataset.name,
                                   "image_size": model.image_size})
    history.update(best_val_loss=best, best_step=best_step, stop_reason=stop_reason,
                   steps_run=len(history["train_loss"]), seconds=round(time.perf_counter() - t0, 2),
                   checkpoint=str(ckpt))
    write_json(history, out / "history.json")
    return history
