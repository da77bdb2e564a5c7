"""Continue training an AstroPT network on a data set (``fmb retrain astropt``), on core's kit
(:mod:`fmb.training`: split by object id, warm-up + cosine schedule, early stopping, history, resume).

Loss: astropt's own next-token Huber loss (``GPT.forward`` with targets; the first modality is
shifted by one token, the next modality is predicted from the token before it). The result is a
``ckpt.pt`` in the official format (``--weights FOLDER`` loads it).

Behaviour changed with the kit (issue 15): the cosine now decays to ``lr * min_lr_ratio`` (default 0.1, as
before), the held-out objects are chosen by object id, the history has one row per evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.errors import ModelError, UsageError
from fmb_astropt.checkpoint import model_args_of, save_checkpoint
from fmb_astropt.commands import AstroPTTraining
from fmb_astropt.config import IMAGES, SPECTRA
from fmb_astropt.model import AstroPTModel


def collect_tokens(
    model: AstroPTModel, dataset: Dataset, max_objects: int = 0, chunk: int = 256
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Every usable object's tokens (float16 on the CPU) and object ids; rows without a spectrum are
    dropped when the network also models spectra."""
    want_spec = SPECTRA in model.modalities
    if want_spec and "spectrum" not in dataset.modalities:
        raise ModelError(f"astropt: the network models spectra but dataset {dataset.name!r} has none")
    stop = min(len(dataset), max_objects) if max_objects else len(dataset)
    parts: dict[str, list[torch.Tensor]] = {}
    ids: list[np.ndarray] = []
    for batch in dataset.iter_batches(chunk, start=0, stop=stop):
        if C.IMAGE not in batch.schema.names:
            raise ModelError(f"astropt: dataset {dataset.name!r} has no images")
        ti, pi = model.image_inputs(batch)
        cols = {IMAGES: ti.cpu().half(), f"{IMAGES}_positions": pi.cpu()}
        keep = np.ones(batch.num_rows, bool)
        if want_spec:
            ts, ps, keep = model.spectrum_inputs(batch)
            cols = {k: v[torch.from_numpy(keep)] for k, v in cols.items()}
            cols[SPECTRA] = ts.cpu()[torch.from_numpy(keep)].half()
            cols[f"{SPECTRA}_positions"] = ps.cpu()[torch.from_numpy(keep)]
        for k, v in cols.items():
            parts.setdefault(k, []).append(v)
        ids.append(batch.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)[keep])
    data = {k: torch.cat(v) for k, v in parts.items()}
    if not data or len(data[IMAGES]) < 4:
        raise ModelError(f"astropt: dataset {dataset.name!r} has fewer than 4 usable objects to train on")
    return data, np.concatenate(ids)


def inputs_targets(
    data: dict[str, torch.Tensor], idx: torch.Tensor, names: list[str], device: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
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


class AstroPTTask:
    """The :class:`fmb.training.Task` of an AstroPT network: its tokens, computed once."""

    def __init__(self, model: AstroPTModel, dataset: Dataset, cfg: AstroPTTraining) -> None:
        self.model, self.module, self.weights, self.cfg = model, model.net, model.weights, cfg
        self.names = list(model.net.modality_registry.names())
        self.data, self.ids = collect_tokens(model, dataset, cfg.max_objects)
        self.dataset = dataset.name

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        self.module.train()
        X, Y = inputs_targets(self.data, torch.from_numpy(idx), self.names, self.model.device)
        return self.module(X, targets=Y)[1]

    @torch.no_grad()
    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        """Mean loss over ``idx`` (weighted by batch size)."""
        from fmb.training import batched_mean

        self.module.eval()

        def loss(b: np.ndarray) -> float:
            X, Y = inputs_targets(self.data, torch.from_numpy(b), self.names, self.model.device)
            return float(self.module(X, targets=Y)[1])

        return {"val_loss": batched_mean(idx, self.cfg.batch_size, loss)}

    def save(self, folder: Path) -> Path:
        return save_checkpoint(
            folder / "ckpt.pt",
            self.module,
            model_args_of(self.module),
            config={"fmb_retrain": self.cfg.to_dict(), "dataset": self.dataset, "image_size": self.model.image_size},
        )


def make_task(cfg: AstroPTTraining, dataset: Dataset, weights: str, device: str) -> AstroPTTask:
    """Load ``cfg.model`` with ``weights`` (core's policy) on ``device`` and collect the tokens of ``dataset``."""
    from fmb.params import parse_spec
    from fmb.plugins import registry

    name, options = parse_spec(cfg.model, "model")
    if name != "astropt":
        raise UsageError(f"fmb retrain astropt trains astropt, not {name!r}")
    model = registry().load_model("astropt", weights=weights, device=device, options=options, seed=cfg.seed)
    return AstroPTTask(model, dataset, cfg)
