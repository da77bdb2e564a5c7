"""The training kit every model plugin's ``fmb retrain MODEL`` runs on.

- :class:`TrainingConfig`: the hyper-parameters; a plugin subclasses it (extra fields, other defaults) and the
  command-line options are generated from the fields (:func:`config_options`: type, default and ``help``
  from the field metadata).
- :func:`lr_factor`: linear warm-up over ``warmup_steps`` optimiser steps to the peak ``lr``, then cosine
  decay to ``lr * min_lr_ratio`` at the last step. ONE floor for every plugin: ``min_lr_ratio`` (default 0.1,
  nanoGPT's ``min_lr = lr / 10`` that astropt's training scripts use; AstroCLIP's own decayed to 0).
- :func:`split`: a seeded train/validation split by object id (not by row position), so the same objects are
  held out whatever the order of rows or files.
- :class:`EarlyStopping`: patience counted in evaluations (every ``eval_every`` steps, or once per epoch).
- :class:`History`: one row per evaluation, written as ``history.json`` and ``history.csv`` (and ``loss.png``).
- :func:`fit`: the loop (AdamW, gradient clipping, the schedule, evaluation, early stopping, saving the
  best result through the plugin's :class:`Task`, ``state.pt`` after each evaluation to ``--resume`` from),
  and the provenance of the result: ``retrain.json`` names the weights file and its sha256, the training data
  set (``about``), steps and seed; ``objects.parquet`` the ids of the objects trained and validated on
  (:func:`fmb.retrained.retrained_provenance` reads them back when the weights are loaded).

torch is imported lazily (inside :func:`fit`), so importing this module is cheap.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fmb.errors import DataError, UsageError
from fmb.io import write_json
from fmb.retrained import RETRAIN_OBJECTS, RETRAIN_SUMMARY

STATE = "state.pt"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
PLOT = "loss.png"
#: the summary and the ids of the objects trained and validated on (the overlap check of a later run reads them)
SUMMARY, OBJECTS = RETRAIN_SUMMARY, RETRAIN_OBJECTS


def option(default: Any, help: str = "", cli: bool = True) -> Any:
    """A dataclass field with the ``help`` (and ``cli``: whether it gets an option) that
    :func:`config_options` reads. A subclass changing a default may leave ``help`` out: the base's is used."""
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass
class TrainingConfig:
    """Hyper-parameters of a retraining run (subclass to add fields or change defaults).

    Length: ``epochs`` passes over the training objects, capped at ``max_steps`` optimiser steps when > 0.
    """

    epochs: int = option(10, "Passes over the training objects.")
    max_steps: int = option(0, "Stop after this many optimiser steps (0 = the epochs decide).")
    batch_size: int = option(32, "Objects per optimiser step.")
    lr: float = option(1e-4, "Peak learning rate (AdamW).")
    min_lr_ratio: float = option(0.1, "The cosine decays to lr * min_lr_ratio at the last step.")
    warmup_steps: int = option(50, "Linear warm-up, in optimiser steps.")
    weight_decay: float = option(0.05, "AdamW weight decay (on weights of 2 or more dimensions only).")
    grad_clip: float = option(1.0, "Clip the gradient norm to this (0 = no clipping).")
    val_fraction: float = option(0.2, "Fraction of objects held out for validation (split by object id).")
    eval_every: int = option(0, "Evaluate every N optimiser steps (0 = at the end of each epoch).")
    patience: int = option(3, "Stop after this many evaluations without improvement (0 = never).")
    min_delta: float = option(1e-4, "Smallest fall of the validation loss that counts as an improvement.")
    max_objects: int = option(0, "Train on the first N objects only (0 = all).")
    seed: int = option(0, "Seed of the split, the batch order, dropout and random weights.")

    def check(self) -> None:
        """One-line :class:`UsageError` naming the first bad value."""
        positive = ("epochs", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"retrain: {name} must be >= 1, not {getattr(self, name)}")
        for name in (
            "max_steps",
            "warmup_steps",
            "weight_decay",
            "grad_clip",
            "eval_every",
            "patience",
            "min_delta",
            "max_objects",
        ):
            if getattr(self, name) < 0:
                raise UsageError(f"retrain: {name} must be >= 0, not {getattr(self, name)}")
        if not self.lr > 0:
            raise UsageError(f"retrain: lr must be > 0, not {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UsageError(f"retrain: min_lr_ratio must be in [0, 1], not {self.min_lr_ratio}")
        if not 0 < self.val_fraction < 1:
            raise UsageError(f"retrain: val_fraction must be in (0, 1), not {self.val_fraction}")

    def total_steps(self, steps_per_epoch: int) -> int:
        total = self.epochs * steps_per_epoch
        return min(total, self.max_steps) if self.max_steps else total

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- CLI options from the fields


def _help(cls: type, name: str) -> str:
    """The first non-empty ``help`` of field ``name`` along the class hierarchy."""
    for base in cls.__mro__:
        f = getattr(base, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("help"):
            return f.metadata["help"]
    return ""


def _cli_fields(cls: type) -> list[tuple[dataclasses.Field, type]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        out.append((f, args[0] if args else tp))
    return out


def config_options(cls: type) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per field of the dataclass ``cls`` (``--name-with-dashes``).

    The type and default come from the field; ``help`` from ``field(metadata={"help": ...})``; a ``bool``
    field is a flag; a field with ``metadata={"cli": False}`` gets none.
    """
    import click

    def deco(fn: Callable) -> Callable:
        for f, tp in reversed(_cli_fields(cls)):
            default = f.default if f.default is not dataclasses.MISSING else None
            flag = "--" + f.name.replace("_", "-")
            if tp is bool:
                fn = click.option(flag, f.name, is_flag=True, default=bool(default), help=_help(cls, f.name))(fn)
            else:
                fn = click.option(
                    flag, f.name, type=tp, default=default, show_default=default is not None, help=_help(cls, f.name)
                )(fn)
        return fn

    return deco


def config_from_options(cls: type, options: dict[str, Any]) -> Any:
    """An instance of ``cls`` from the parsed options of :func:`config_options` (others are ignored)."""
    return cls(**{f.name: options[f.name] for f, _ in _cli_fields(cls) if f.name in options})


# ---------------------------------------------------------------------- schedule, split, early stopping


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based).

    ``(step + 1) / warmup`` during the warm-up; then ``min_ratio + (1 - min_ratio) * (1 + cos(pi p)) / 2``
    with ``p = (step - warmup) / (total - warmup)`` clipped to [0, 1] (SGDR cosine annealing, Loshchilov &
    Hutter 2017, without restarts): 1 right after the warm-up, ``min_ratio`` at ``step = total``.
    """
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


def split(ids: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` positions into ``ids``: ``round(n * val_fraction)`` objects (at least 1, at
    most n - 1) held out.

    Each object id is hashed with the seed (BLAKE2b, standard library) and the smallest hashes are held out,
    so the held-out objects depend on the ids and the seed only, never on the order of the rows. Both arrays
    are in hash order. Raises :class:`DataError` for fewer than 2 objects or a repeated id.
    """
    n = len(ids)
    if n < 2:
        raise DataError(f"retrain: {n} usable object(s): at least 2 are needed to hold some out for validation")
    keys = [str(i) for i in ids]
    if len(set(keys)) != n:
        raise DataError("retrain: the data set repeats object ids; the train/validation split needs unique ids")
    h = np.array(
        [int.from_bytes(hashlib.blake2b(f"{seed}\0{k}".encode(), digest_size=8).digest(), "big") for k in keys],
        dtype=np.uint64,
    )
    order = np.argsort(h, kind="stable")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return order[n_val:], order[:n_val]


@dataclass
class EarlyStopping:
    """Stop after ``patience`` evaluations in a row that do not lower the best loss by more than
    ``min_delta`` (``patience = 0``: never stop early)."""

    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_step: int = 0
    bad: int = 0

    def update(self, value: float, step: int) -> bool:
        """Record an evaluation; True when it is a new best."""
        if value < self.best - self.min_delta:
            self.best, self.best_step, self.bad = value, step, 0
            return True
        self.bad += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


@dataclass
class History:
    """One row per evaluation: ``step``, ``epoch``, ``lr``, ``train_loss`` (mean since the last evaluation;
    None at step 0), ``val_loss``, the task's other metrics, ``seconds``."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def write(self, folder: Path) -> None:
        """``history.json`` (the rows) and ``history.csv`` (one column per key, in first-seen order)."""
        write_json(self.rows, folder / HISTORY_JSON)
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        with open(folder / HISTORY_CSV, "w", newline="") as fh:
            w = csv.DictWriter(fh, cols)
            w.writeheader()
            w.writerows(self.rows)

    @classmethod
    def load(cls, folder: Path) -> History:
        return cls(json.loads((folder / HISTORY_JSON).read_text()))

    def plot(self, path: Path) -> None:
        """Training and validation loss against the step (``loss.png``)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        tr = [r for r in self.rows if r.get("train_loss") is not None]
        ax.plot([r["step"] for r in tr], [r["train_loss"] for r in tr], "o-", label="train")
        ax.plot([r["step"] for r in self.rows], [r["val_loss"] for r in self.rows], "o-", label="validation")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def plan(cfg: TrainingConfig, n: int) -> tuple[int, int, int]:
    """``(batch size, steps per epoch, total steps)`` for ``n`` usable objects (after the split)."""
    n_train = n - min(n - 1, max(1, round(n * cfg.val_fraction)))
    bs = max(1, min(cfg.batch_size, n_train))
    per_epoch = max(1, n_train // bs)
    return bs, per_epoch, cfg.total_steps(per_epoch)


def default_output(model: str, dataset: str, seed: int) -> Path:
    """The one default run folder of ``fmb retrain``: ``$FMB_HOME/retrained/<model>/<dataset>-seed<seed>``
    (``dataset`` is the data-set spec, with characters other than letters, digits and ``._=-`` as ``-``)."""
    from fmb.home import fmb_home

    safe = "".join(c if c.isalnum() or c in "._=-" else "-" for c in dataset)
    return fmb_home() / "retrained" / model / f"{safe}-seed{seed}"


def batched_mean(idx: np.ndarray, batch_size: int, loss: Callable[[np.ndarray], float]) -> float:
    """The mean of ``loss(batch)`` over ``idx`` in batches of ``batch_size``, weighted by batch length (the
    per-object mean when ``loss`` is a per-batch mean)."""
    total = sum(
        float(loss(idx[s : s + batch_size])) * len(idx[s : s + batch_size]) for s in range(0, len(idx), batch_size)
    )
    return total / max(len(idx), 1)


# ---------------------------------------------------------------------- the loop


class Task(Protocol):
    """What a plugin trains. ``ids``: object ids of the usable objects (positions index the task's data);
    ``module``: the torch module whose state ``state.pt`` keeps for ``--resume``; ``weights``: the
    :class:`fmb.models.base.WeightsInfo` it started from."""

    ids: np.ndarray
    module: Any
    weights: Any

    def parameters(self) -> list[Any]:
        """The parameters to train."""

    def loss(self, idx: np.ndarray) -> Any:
        """The training loss (a scalar tensor, in training mode) of the objects at positions ``idx``."""

    def evaluate(self, idx: np.ndarray) -> dict[str, float]:
        """Validation metrics of the objects at ``idx``; ``val_loss`` is the one early stopping reads."""

    def save(self, folder: Path) -> Path:
        """Write the current weights as the run's result (what ``--weights folder`` loads); returns the file
        holding the learned tensors (its sha256 is the provenance's, and what the plugin records on load), or
        ``folder`` itself when the task also has ``weights_sha256(folder) -> str`` (the plugin's folder hash)."""


def _optimizer(params: list[Any], cfg: TrainingConfig) -> Any:
    """AdamW with weight decay on weights of 2+ dimensions only (biases and norms are not decayed: the
    nanoGPT/astropt convention)."""
    import torch

    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)


def fit(
    task: Task,
    cfg: TrainingConfig,
    out: str | Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: Callable[[int], None] | None = None,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``task`` into the folder ``out``; returns the summary also written to ``retrain.json``.

    Evaluates before the first step (step 0) and then every ``eval_every`` steps (else at each epoch's end)
    and at the last step; a new best validation loss calls ``task.save(out)``. After each evaluation
    ``state.pt`` (module, optimiser, schedule, early stopping, step) and the history are written, so
    ``resume=True`` continues from the last evaluation with the same batches as an uninterrupted run.
    Raises :class:`UsageError` when ``out`` holds a run and ``resume`` is False, or holds none and it is True.
    ``about`` (the command's: model, dataset, dataset_spec, dataset_options, dataset_fingerprint, dataset_pool)
    enters ``retrain.json`` with ``weights_file`` and ``sha256`` (the saved weights) and ``objects_file``.
    """
    import pyarrow as pa
    import torch

    from fmb.io import sha256_file, write_parquet
    from fmb.protocol.weights import load_state_dict_strict

    cfg.check()
    out = Path(out)
    if (out / STATE).exists() and not resume:
        raise UsageError(
            f"retrain: {str(out)!r} already holds a run: pass --resume to continue it, or another --output"
        )
    if resume and not (out / STATE).exists():
        raise UsageError(f"retrain: --resume: {str(out)!r} holds no run ({STATE}) to continue")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_idx, val_idx = split(task.ids, cfg.val_fraction, cfg.seed)
    # every object that shaped the weights (trained on, or chose the best step): a run scoring any is flagged
    write_parquet(pa.table({"object_id": pa.array(np.asarray(task.ids).tolist())}), out / OBJECTS)
    bs, per_epoch, total = plan(cfg, len(task.ids))
    every = cfg.eval_every or per_epoch
    params = list(task.parameters())
    opt = _optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, total, cfg.min_lr_ratio))
    stopper = EarlyStopping(cfg.patience, cfg.min_delta)
    history = History()
    step = 0
    saved = out  # the weights file of the best evaluation (task.save's answer)

    def checkpoint() -> None:
        torch.save(
            {
                "model": {k: v.detach().cpu() for k, v in task.module.state_dict().items()},
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "stopper": stopper.state_dict(),
                "step": step,
                "saved": Path(saved).name,
            },
            out / STATE,
        )
        history.write(out)

    if resume:
        state = torch.load(out / STATE, map_location="cpu", weights_only=True)
        load_state_dict_strict(task.module, state["model"], f"retrain: resume {out / STATE}")
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        stopper.load_state_dict(state["stopper"])
        step, history = int(state["step"]), History.load(out)
        saved = out / state.get("saved", "")
        log(f"resuming at step {step} (best validation loss so far {stopper.best:.4f})")
    else:
        metrics = task.evaluate(val_idx)
        history.add(step=0, epoch=0, lr=0.0, train_loss=None, **metrics, seconds=0.0)
        stopper.update(metrics["val_loss"], 0)
        saved = task.save(out)
        checkpoint()
        log(f"step 0: validation loss {metrics['val_loss']:.4f}")
    losses: list[float] = []
    t_eval = time.perf_counter()
    perm, perm_epoch = train_idx, -1
    while step < total and not stopper.stop:
        epoch, pos = divmod(step, per_epoch)
        if epoch != perm_epoch:  # the batch order of an epoch depends on (seed, epoch) only: resumable
            perm, perm_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(train_idx), epoch
        torch.manual_seed(cfg.seed * 100_003 + step)  # dropout: the same after a resume
        loss = task.loss(perm[pos * bs : (pos + 1) * bs])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        lr = sched.get_last_lr()[0]
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        if progress:
            progress(1)
        if step % every == 0 or step == total:
            metrics = task.evaluate(val_idx)
            history.add(
                step=step,
                epoch=(step - 1) // per_epoch + 1,
                lr=lr,
                train_loss=float(np.mean(losses)),
                **metrics,
                seconds=round(time.perf_counter() - t_eval, 3),
            )
            losses, t_eval = [], time.perf_counter()
            if stopper.update(metrics["val_loss"], step):
                saved = task.save(out)
            checkpoint()
            log(f"step {step}: train {history.rows[-1]['train_loss']:.4f}, validation {metrics['val_loss']:.4f}")
    stop_reason = (
        f"early stopping: no improvement in {cfg.patience} evaluations" if stopper.stop else f"reached {total} steps"
    )
    history.plot(out / PLOT)
    summary = {
        "config": cfg.to_dict(),
        **(about or {}),
        "weights": task.weights.to_dict(),
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "steps_per_epoch": per_epoch,
        "total_steps": total,
        "steps_run": step,
        "initial_val_loss": history.rows[0]["val_loss"],
        "best_val_loss": stopper.best,
        "best_step": stopper.best_step,
        "stop_reason": stop_reason,
        "seconds": round(time.perf_counter() - t0, 2),
        "weights_file": "." if Path(saved) == out else Path(saved).name,
        # the hash the plugin records when it loads them (a file's sha256, or the plugin's hash of a folder)
        "sha256": getattr(task, "weights_sha256", sha256_file)(saved),
        "objects_file": OBJECTS,
    }
    write_json(summary, out / SUMMARY)
    return summary
