"""``nf``: an out-of-fold normalising-flow density detector (zuko MAF or NSF); score = -log p.

Per fold (k folds, default 3, shuffled with the run's seed) and fitted on that fold's training
rows only: PCA to ``n_components`` (only when the embedding is wider), z-score, clip at
``clip`` sigma, then a flow trained on 90% of the training rows for a budget of ``max_steps``
Adam steps, with early stopping on the median -log p of the other 10% (:func:`train_flow`). The
held-out fold is scored by that flow, so no object is scored by a flow (or a PCA) that saw it;
with any ``folds >= 2`` every object is scored out of fold. torch runs on
:func:`fmb.threads.n_threads` threads unless ``threads`` is given. torch is imported inside
functions only.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmb.detectors.base import Detector
from fmb.detectors.flow_defaults import DEFAULTS, SCHEMA
from fmb.errors import DetectorError
from fmb.paramschema import check_params
from fmb.threads import limited

FLOWS = SCHEMA["flow"].choices


@dataclass
class Preprocessor:
    """PCA (optional) -> z-score -> clip, with statistics from the training rows only."""

    mean: np.ndarray
    components: np.ndarray | None
    mu: np.ndarray
    sd: np.ndarray
    clip: float

    @classmethod
    def fit(cls, X: np.ndarray, n_components: int, clip: float) -> Preprocessor:
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        components = None
        k = min(n_components, X.shape[0] - 1)
        if X.shape[1] > k:
            _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
            components = vt[:k]
        Z = cls._project(X, mean, components)
        mu, sd = Z.mean(axis=0), Z.std(axis=0)
        return cls(mean, components, mu, np.where(sd > 1e-12, sd, 1.0), float(clip))

    @staticmethod
    def _project(X: np.ndarray, mean: np.ndarray, components: np.ndarray | None) -> np.ndarray:
        return (X - mean) @ components.T if components is not None else X - mean

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = (self._project(np.asarray(X, dtype=np.float64), self.mean, self.components) - self.mu) / self.sd
        return np.clip(Z, -self.clip, self.clip).astype(np.float32)


class FoldModel:
    """One fold's preprocessing and trained flow."""

    def __init__(self, prep: Preprocessor, flow: Any, device: str, history: dict[str, Any]) -> None:
        self.prep, self.flow, self.device, self.history = prep, flow, device, history

    def score(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """-log p of each row of raw embeddings ``X``."""
        import torch

        Z = torch.from_numpy(self.prep.transform(X))
        out = []
        with torch.no_grad():
            dist = self.flow()
            for lo in range(0, len(Z), batch_size):
                out.append(-dist.log_prob(Z[lo : lo + batch_size].to(self.device)).double().cpu().numpy())
        s = np.concatenate(out)
        finite = np.isfinite(s)
        top = s[finite].max() if finite.any() else 0.0
        return np.where(finite, s, top + 1.0)  # an infinitely unlikely row ranks first

    def save(self, path: Path) -> None:
        import torch

        p = self.prep
        torch.save(
            {
                "state_dict": self.flow.state_dict(),
                "history": self.history,
                "prep": {"mean": p.mean, "components": p.components, "mu": p.mu, "sd": p.sd, "clip": p.clip},
            },
            path,
        )


def build_flow(kind: str, features: int, transforms: int, hidden: int, layers: int) -> Any:
    import zuko

    cls = {"maf": zuko.flows.MAF, "nsf": zuko.flows.NSF}[kind]
    return cls(features=features, transforms=transforms, hidden_features=[hidden] * layers)


def train_flow(Ztr: np.ndarray, Zval: np.ndarray, cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    """Adam on -mean log p of shuffled mini-batches for at most ``max_steps`` steps (and at most
    ``epochs`` passes over ``Ztr``); every ``eval_every`` steps the **median** -log p of the validation
    rows ``Zval`` is checked, and training stops after ``patience`` checks without improvement. The
    flow of the best check is returned with its history.

    The median, not the mean: one extreme validation row (an anomaly, which is what we look for)
    can hold the mean -log p up (or make it infinite) for the whole run and so decide when a fold
    stops; the median follows the bulk the flow is meant to model.
    """
    import torch

    torch.manual_seed(seed)
    flow = build_flow(cfg["flow"], Ztr.shape[1], cfg["transforms"], cfg["hidden"], cfg["layers"]).to(cfg["device"])
    opt = torch.optim.Adam(flow.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    xtr = torch.from_numpy(Ztr).to(cfg["device"])
    xval = torch.from_numpy(Zval).to(cfg["device"])
    gen = torch.Generator().manual_seed(seed)
    batch = min(int(cfg["batch_size"]), len(xtr))
    per_epoch = -(-len(xtr) // batch)
    budget = min(int(cfg["max_steps"]), int(cfg["epochs"]) * per_epoch)
    every = max(1, min(int(cfg["eval_every"]), budget))

    def validate() -> float:
        flow.eval()
        with torch.no_grad():
            nll = torch.cat([-flow().log_prob(b) for b in xval.split(8192)])
        flow.train()
        nll = nll[torch.isfinite(nll)]
        return float(nll.median()) if len(nll) else float("inf")

    best, best_state, best_step, stale, step = float("inf"), copy.deepcopy(flow.state_dict()), 0, 0, 0
    flow.train()
    while step < budget and stale < int(cfg["patience"]):
        for idx in torch.randperm(len(xtr), generator=gen).split(batch):
            loss = -flow().log_prob(xtr[idx]).mean()
            if torch.isfinite(loss):
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
                opt.step()
            step += 1
            if step % every == 0 or step == budget:
                val = validate()
                if np.isfinite(val) and val < best - 1e-4:
                    best, best_state, best_step, stale = val, copy.deepcopy(flow.state_dict()), step, 0
                else:
                    stale += 1
            if step >= budget or stale >= int(cfg["patience"]):
                break
    flow.load_state_dict(best_state)
    flow.eval()
    return flow, {"best_step": best_step, "steps_run": step, "steps_per_epoch": per_epoch, "best_val_median_nll": best}


def fit_fold(Xtr: np.ndarray, cfg: dict[str, Any], seed: int) -> FoldModel:
    """Fit preprocessing and a flow on raw training rows ``Xtr`` only."""
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(Xtr) * float(cfg["val_fraction"]))))
    perm = rng.permutation(len(Xtr))
    val, fit = perm[:n_val], perm[n_val:]
    prep = Preprocessor.fit(Xtr[fit], int(cfg["n_components"]), float(cfg["clip"]))
    flow, history = train_flow(prep.transform(Xtr[fit]), prep.transform(Xtr[val]), cfg, seed)
    return FoldModel(prep, flow, cfg["device"], history)


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """A balanced, shuffled fold index (0..folds-1) for each of ``n`` rows."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


class FlowDetector(Detector):
    """See the module docstring. Parameters and defaults: :data:`DEFAULTS`."""

    name = "nf"

    def __init__(self, **params: Any) -> None:
        cfg = {**DEFAULTS, **check_params("detector 'nf'", SCHEMA, params)}
        super().__init__(**cfg)
        self.folds_: np.ndarray | None = None
        self.history_: list[dict[str, Any]] = []

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        from fmb import extras

        extras.require("flows", "detector 'nf'")
        import torch

        X = self.check_input(X)
        cfg = dict(self.params)
        k = int(cfg["folds"])
        if X.shape[0] < 4 * k:
            raise DetectorError(
                f"detector 'nf': {X.shape[0]} objects are too few for {k} folds (need at least {4 * k})"
            )
        if not (X.std(axis=0) > 0).any():
            raise DetectorError("detector 'nf': the embeddings are constant (every column has zero variance)")
        if cfg["device"] == "auto":
            cfg["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        with limited(int(cfg["threads"]) or None):  # torch, BLAS and OpenMP pools, restored afterwards
            return self._oof(X, cfg, seed)

    def _oof(self, X: np.ndarray, cfg: dict[str, Any], seed: int) -> np.ndarray:
        np.random.seed(seed)
        folds = fold_assignment(len(X), int(cfg["folds"]), seed)
        scores = np.empty(len(X))
        save = Path(cfg["save_dir"]) if cfg["save_dir"] else None
        if save:
            save.mkdir(parents=True, exist_ok=True)
        self.folds_, self.history_ = folds, []
        for f in range(int(cfg["folds"])):
            test = folds == f
            model = fit_fold(X[~test], cfg, seed + f)
            scores[test] = model.score(X[test])
            self.history_.append({"fold": f, "n_train": int((~test).sum()), **model.history})
            if save:
                model.save(save / f"fold-{f}.pt")
        if save:
            (save / "folds.json").write_text(
                json.dumps(
                    {
                        "params": {k: v for k, v in cfg.items()},
                        "seed": seed,
                        "fold_of_row": folds.tolist(),
                        "history": self.history_,
                    },
                    default=str,
                )
            )
        return scores


def make_detector(**params: Any) -> FlowDetector:
    """Loader of the ``nf`` detector spec."""
    return FlowDetector(**params)
