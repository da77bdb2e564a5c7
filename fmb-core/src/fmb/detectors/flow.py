"""``nf``: an out-of-fold normalising-flow density detector (zuko MAF or NSF); score = centred -log p.

Per fold (k folds, default 3, shuffled with the run's seed) and fitted on that fold's training
rows only (:func:`fit_fold`): a validation split (``val_fraction`` of the training rows, at most
:data:`VAL_MAX`), PCA whitening to ``n_components`` fitted on the rest (:class:`Whitener`), a clip
at ``clip`` sigma, then a flow trained for a budget of ``max_steps`` Adam steps with early stopping
on the median -log p of the validation rows (:func:`train_flow`). The held-out fold is scored by
that flow, in chunks, and each fold's scores are centred on the median -log p of its own
validation rows (:meth:`FoldModel.score`), so that scores of different folds' flows are comparable.
No object is scored by a flow (or a whitening) that saw it; with any ``folds >= 2`` every object is
scored out of fold. Memory beyond the input is O(chunk x D + D^2 + training rows x n_components):
rows are gathered by index in chunks, never as a copy of the whole matrix. torch runs on
:func:`fmb.threads.n_threads` threads unless ``threads`` is given; it is imported inside functions only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
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
#: rows per chunk when gathering, whitening and scoring (bounds memory at CHUNK x D floats)
CHUNK = 16384
#: at most this many validation rows per fold: the median -log p of 4,096 rows is known to about
#: 2% of its spread (1.25 sigma / sqrt(n)), and checking more rows only costs time
VAL_MAX = 4096
#: whitening keeps principal directions whose variance exceeds this fraction of the largest
#: (the others are numerically zero: dividing by their square root would amplify rounding noise)
RANK_TOL = 1e-10


def chunks(rows: np.ndarray) -> Iterator[np.ndarray]:
    """Consecutive slices of the index array ``rows``, each at most :data:`CHUNK` long."""
    for lo in range(0, len(rows), CHUNK):
        yield rows[lo : lo + CHUNK]


@dataclass
class Whitener:
    """PCA whitening with statistics of the fitting rows only: ``z = (x - mean) @ W``, clipped at
    +-``clip``, where the columns of ``W`` ``[D, k]`` are the top-k principal directions divided by the
    square root of their variance, so ``z`` has identity covariance on the fitting rows.

    The covariance is accumulated in float64 over chunks of rows and diagonalised with
    ``numpy.linalg.eigh`` (not an SVD of the centred matrix, which needs a float64 copy of all rows:
    8 GB at 1,000,000 x 1,024): memory is O(CHUNK x D + D^2) whatever the number of rows.
    """

    mean: np.ndarray  # [D]
    W: np.ndarray  # [D, k]
    variance: np.ndarray  # [k] variance along each kept direction
    clip: float

    @classmethod
    def fit(cls, X: np.ndarray, rows: np.ndarray, n_components: int, clip: float) -> Whitener:
        """Fit on ``X[rows]`` (``X`` ``[N, D]``, ``rows`` an index array). ``k = min(n_components, D,
        len(rows) - 1)`` directions, fewer where the rows span fewer. Raises DetectorError when the
        rows are constant."""
        n, D = len(rows), X.shape[1]
        mean = np.zeros(D)
        for r in chunks(rows):
            mean += X[r].sum(axis=0, dtype=np.float64)
        mean /= n
        cov = np.zeros((D, D))
        for r in chunks(rows):
            c = X[r].astype(np.float64) - mean
            cov += c.T @ c
        cov /= max(n - 1, 1)
        var, vecs = np.linalg.eigh(cov)  # ascending
        var, vecs = var[::-1], vecs[:, ::-1]
        if not var[0] > 0:
            raise DetectorError(f"detector 'nf': a fold's {n} training rows are all identical")
        k = int(min(n_components, D, max(n - 1, 1), (var > RANK_TOL * var[0]).sum()))
        var = var[:k]
        return cls(mean, np.ascontiguousarray(vecs[:, :k] / np.sqrt(var)), var, float(clip))

    def transform(self, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Whitened, clipped float32 ``[len(rows), k]`` (all rows when ``rows`` is None), in chunks."""
        rows = np.arange(len(X)) if rows is None else rows
        out = np.empty((len(rows), self.W.shape[1]), dtype=np.float32)
        for lo in range(0, len(rows), CHUNK):
            z = (X[rows[lo : lo + CHUNK]] - self.mean) @ self.W
            out[lo : lo + CHUNK] = np.clip(z, -self.clip, self.clip)
        return out


def neg_log_prob(flow: Any, Z: np.ndarray, device: str, batch: int = 8192) -> np.ndarray:
    """-log p of each row of whitened ``Z`` under ``flow`` (float64 ``[len(Z)]``), in batches."""
    import torch

    out = np.empty(len(Z))
    with torch.no_grad():
        dist = flow()
        for lo in range(0, len(Z), batch):
            z = torch.from_numpy(Z[lo : lo + batch]).to(device)
            out[lo : lo + batch] = -dist.log_prob(z).double().cpu().numpy()
    return out


class FoldModel:
    """One fold's whitening, trained flow and centring offset (the median -log p of its validation rows)."""

    def __init__(self, prep: Whitener, flow: Any, device: str, offset: float, history: dict[str, Any]) -> None:
        self.prep, self.flow, self.device, self.offset, self.history = prep, flow, device, offset, history

    def score(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Centred -log p of the rows ``X[rows]`` of raw embeddings (float64, in chunks); a row with
        infinite -log p ranks above every finite one."""
        s = np.concatenate(
            [neg_log_prob(self.flow, self.prep.transform(X, r), self.device) for r in chunks(rows)] or [np.empty(0)]
        )
        s -= self.offset
        finite = np.isfinite(s)
        top = s[finite].max() if finite.any() else 0.0
        return np.where(finite, s, top + 1.0)

    def save(self, path: Path) -> None:
        import torch

        p = self.prep
        torch.save(
            {
                "state_dict": self.flow.state_dict(),
                "history": self.history,
                "offset": self.offset,
                "prep": {"mean": p.mean, "W": p.W, "variance": p.variance, "clip": p.clip},
            },
            path,
        )


def build_flow(kind: str, features: int, transforms: int, hidden: int, layers: int) -> Any:
    import zuko

    cls = {"maf": zuko.flows.MAF, "nsf": zuko.flows.NSF}[kind]
    return cls(features=features, transforms=transforms, hidden_features=[hidden] * layers)


def step_budget(n_fit: int, cfg: dict[str, Any]) -> tuple[int, int, int]:
    """``(batch, steps_per_epoch, budget)`` for ``n_fit`` training rows: the budget is
    ``min(max_steps, epochs x steps_per_epoch)`` Adam steps, so a small survey gets ``epochs`` passes
    and a large one ``max_steps`` steps whatever its size."""
    batch = min(int(cfg["batch_size"]), n_fit)
    per_epoch = -(-n_fit // batch)
    return batch, per_epoch, min(int(cfg["max_steps"]), int(cfg["epochs"]) * per_epoch)


def train_flow(Ztr: np.ndarray, Zval: np.ndarray, cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    """Adam on -mean log p of shuffled mini-batches of ``Ztr`` within :func:`step_budget`; every
    ``eval_every`` steps the **median** -log p of the validation rows ``Zval`` is checked, and training
    stops after ``patience`` checks without improvement. The flow of the best check is returned
    with its history.

    The median, not the mean: one extreme validation row (an anomaly, which is what we look for)
    can hold the mean -log p up (or make it infinite) for the whole run and so decide when a fold
    stops; the median follows the bulk the flow is meant to model.
    """
    import torch

    torch.manual_seed(seed)
    flow = build_flow(cfg["flow"], Ztr.shape[1], cfg["transforms"], cfg["hidden"], cfg["layers"]).to(cfg["device"])
    opt = torch.optim.Adam(flow.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    xtr = torch.from_numpy(Ztr).to(cfg["device"])
    gen = torch.Generator().manual_seed(seed)
    batch, per_epoch, budget = step_budget(len(xtr), cfg)
    every = max(1, min(int(cfg["eval_every"]), budget))

    def validate() -> float:
        flow.eval()
        nll = neg_log_prob(flow, Zval, cfg["device"])
        flow.train()
        nll = nll[np.isfinite(nll)]
        return float(np.median(nll)) if len(nll) else float("inf")

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


def fit_fold(X: np.ndarray, rows: np.ndarray, cfg: dict[str, Any], seed: int) -> FoldModel:
    """Fit whitening and a flow on the raw training rows ``X[rows]`` only (``rows``: index array): a
    validation split (``val_fraction``, at most :data:`VAL_MAX` rows), then at most ``max_steps x
    batch_size`` of the others to fit on."""
    perm = np.random.default_rng(seed).permutation(rows)
    n_val = min(VAL_MAX, max(1, int(round(len(rows) * float(cfg["val_fraction"])))))
    # the flow can visit at most max_steps x batch_size rows within its budget: a larger survey
    # fits the whitening and the flow on that many of its rows (seeded), which bounds their cost
    cap = int(cfg["max_steps"]) * int(cfg["batch_size"])
    val, fit = np.sort(perm[:n_val]), np.sort(perm[n_val : n_val + cap])
    prep = Whitener.fit(X, fit, int(cfg["n_components"]), float(cfg["clip"]))
    Zval = prep.transform(X, val)
    flow, history = train_flow(prep.transform(X, fit), Zval, cfg, seed)
    offset = float(np.median(neg_log_prob(flow, Zval, cfg["device"])))
    history.update(n_fit=len(fit), n_val=n_val, components=int(prep.W.shape[1]))
    return FoldModel(prep, flow, cfg["device"], offset, history)


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
        """Out-of-fold scores ``[N]`` (float64) of the embeddings ``X`` ``[N, D]``; higher = less likely.

        Raises DetectorError for fewer than 4 x ``folds`` rows, non-finite or constant embeddings."""
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
        if not (X.max(axis=0) > X.min(axis=0)).any():  # no temporary copy of X (X.std would make one)
            raise DetectorError("detector 'nf': the embeddings are constant (every column has zero variance)")
        if cfg["device"] == "auto":
            cfg["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        with limited(int(cfg["threads"]) or None):  # torch, BLAS and OpenMP pools, restored afterwards
            return self._oof(X, cfg, seed)

    def _oof(self, X: np.ndarray, cfg: dict[str, Any], seed: int) -> np.ndarray:
        folds = fold_assignment(len(X), int(cfg["folds"]), seed)
        scores = np.empty(len(X))
        save = Path(cfg["save_dir"]) if cfg["save_dir"] else None
        if save:
            save.mkdir(parents=True, exist_ok=True)
        self.folds_, self.history_ = folds, []
        for f in range(int(cfg["folds"])):
            test = np.flatnonzero(folds == f)
            model = fit_fold(X, np.flatnonzero(folds != f), cfg, seed + f)
            scores[test] = model.score(X, test)
            self.history_.append({"fold": f, "n_train": len(X) - len(test), "offset": model.offset, **model.history})
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
