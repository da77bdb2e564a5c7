"""``fmb retrain aion``: the Euclid -> HSC adapter (:mod:`fmb_aion.adapter`) trained on core's kit
(:mod:`fmb.training`) with its cycle loss through the frozen AION image codec.

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


def make_task(cfg: AionTraining, dataset: Any, weights: str, device: str) -> AionAdapterTask:
    """Load the image codec ``weights`` asks for (core's policy) and the images of ``dataset``."""
    return AionAdapterTask(cfg, dataset, weights, device)
