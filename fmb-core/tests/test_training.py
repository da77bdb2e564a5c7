"""fmb.training: schedule values, split determinism, early stopping, CLI options, the loop and resume."""

from __future__ import annotations

import dataclasses
import json
import math

import click
import numpy as np
import pytest
from click.testing import CliRunner

from fmb.errors import DataError, UsageError
from fmb.training import (
    EarlyStopping,
    TrainingConfig,
    config_from_options,
    config_options,
    default_output,
    fit,
    lr_factor,
    option,
    split,
)


def test_schedule_warms_up_linearly_then_decays_on_a_cosine_to_the_floor():
    assert [lr_factor(s, 4, 20, 0.1) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 20, 0.1) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: cos(pi/2) = 0
    assert lr_factor(20, 4, 20, 0.1) == pytest.approx(0.1)
    assert lr_factor(99, 4, 20, 0.1) == pytest.approx(0.1)  # past the end: the floor
    assert lr_factor(8, 0, 16, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_split_is_by_object_id_whatever_the_row_order():
    ids = np.array([f"obj{i}" for i in range(50)])
    train, val = split(ids, 0.2, seed=7)
    assert len(val) == 10 and len(train) == 40 and not set(train) & set(val)
    rev = ids[::-1]
    _, val_r = split(rev, 0.2, seed=7)
    assert set(rev[val_r]) == set(ids[val])  # the same objects held out
    assert set(ids[split(ids, 0.2, seed=8)[1]]) != set(ids[val])  # the seed matters
    assert len(split(ids[:3], 0.01, 0)[1]) == 1 and len(split(ids[:3], 0.99, 0)[1]) == 2
    with pytest.raises(DataError, match="repeats object ids"):
        split(np.array(["a", "a", "b"]), 0.5, 0)
    with pytest.raises(DataError, match="at least 2"):
        split(np.array(["a"]), 0.5, 0)


def test_early_stopping_counts_evaluations_without_improvement():
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert es.update(1.0, 0) and not es.stop
    assert not es.update(0.95, 1) and not es.stop  # within min_delta: no improvement
    assert es.update(0.8, 2) and es.bad == 0 and es.best_step == 2
    es.update(0.9, 3)
    es.update(0.85, 4)
    assert es.stop and es.best == 0.8
    again = EarlyStopping(2)
    again.load_state_dict(es.state_dict())
    assert again.stop and again.best_step == 2
    assert not EarlyStopping(0).stop


@dataclasses.dataclass
class _Cfg(TrainingConfig):
    epochs: int = option(3, "Passes.")
    size: str | None = option(None, "A size.")
    flag: bool = option(False, "A flag.")
    hidden: int = option(5, "No option.", cli=False)


def test_cli_options_are_generated_from_the_fields():
    seen = {}

    @click.command()
    @config_options(_Cfg)
    def cmd(**kw):
        seen.update(kw)

    res = CliRunner().invoke(cmd, ["--help"])
    assert "--warmup-steps" in res.output and "Passes." in res.output and "--hidden" not in res.output
    res = CliRunner().invoke(cmd, ["--lr", "0.5", "--size", "tiny", "--flag"])
    assert res.exit_code == 0, res.output
    cfg = config_from_options(_Cfg, seen)
    assert (cfg.lr, cfg.size, cfg.flag, cfg.epochs, cfg.hidden) == (0.5, "tiny", True, 3, 5)
    with pytest.raises(UsageError, match="val_fraction"):
        _Cfg(val_fraction=1.0).check()


def test_default_output_is_under_fmb_home(fmb_home):
    assert (
        default_output("m", "parquet:path=/a b.parquet", 3)
        == fmb_home / "retrained" / "m" / "parquet-path=-a-b.parquet-seed3"
    )


class _Linear:
    """y = 2x + 1 learnt by a 1 -> 1 linear layer: a task whose best loss is known (0)."""

    def __init__(self, n=40):
        import torch

        from fmb.models.base import WeightsInfo

        torch.manual_seed(0)
        self.module = torch.nn.Linear(1, 1)
        self.x = torch.linspace(-1, 1, n)[:, None]
        self.y = 2 * self.x + 1
        self.ids = np.arange(n)
        self.weights = WeightsInfo(kind="random", seed=0)
        self.saved = 0

    def parameters(self):
        return list(self.module.parameters())

    crash_after = -1
    calls = 0

    def loss(self, idx):
        import torch

        self.calls += 1
        if self.calls == self.crash_after + 1:
            raise RuntimeError("killed")
        return torch.nn.functional.mse_loss(self.module(self.x[idx]), self.y[idx])

    def evaluate(self, idx):
        import torch

        with torch.no_grad():
            return {"val_loss": float(torch.nn.functional.mse_loss(self.module(self.x[idx]), self.y[idx]))}

    def save(self, folder):
        import torch

        self.saved += 1
        torch.save(self.module.state_dict(), folder / "w.pt")
        return folder / "w.pt"


def test_fit_learns_records_history_and_resumes_to_the_same_result(tmp_path):
    pytest.importorskip("torch")
    cfg = TrainingConfig(epochs=8, batch_size=8, lr=0.5, warmup_steps=2, val_fraction=0.25, patience=0)
    full = _Linear()
    s = fit(full, cfg, tmp_path / "full", log=lambda m: None)
    assert s["steps_per_epoch"] == 3 and s["total_steps"] == 24 and s["steps_run"] == 24
    assert s["best_val_loss"] < s["initial_val_loss"] / 3 and full.saved >= 2
    hist = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [h["step"] for h in hist] == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert hist[1]["lr"] == pytest.approx(cfg.lr * lr_factor(2, 2, 24, 0.1))  # lr of the last step before it
    csv_lines = (tmp_path / "full" / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,epoch,lr,train_loss,val_loss") and len(csv_lines) == 10
    with pytest.raises(UsageError, match="--resume"):
        fit(_Linear(), cfg, tmp_path / "full", log=lambda m: None)

    crashing = _Linear()
    crashing.crash_after = 13  # killed in step 14, after the evaluation (and state.pt) at step 12
    with pytest.raises(RuntimeError, match="killed"):
        fit(crashing, cfg, tmp_path / "part", log=lambda m: None)
    assert [h["step"] for h in json.loads((tmp_path / "part" / "history.json").read_text())][-1] == 12
    resumed = _Linear()  # a fresh module: resume restores it from state.pt
    s2 = fit(resumed, cfg, tmp_path / "part", resume=True, log=lambda m: None)
    assert s2["best_val_loss"] == pytest.approx(s["best_val_loss"], rel=1e-5)
    w_full, w_res = full.module.weight.item(), resumed.module.weight.item()
    assert w_res == pytest.approx(w_full, rel=1e-5)


def test_resume_without_a_run_and_early_stopping(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(UsageError, match="holds no run"):
        fit(_Linear(), TrainingConfig(), tmp_path / "none", resume=True, log=lambda m: None)
    cfg = TrainingConfig(epochs=50, batch_size=8, lr=1e-9, warmup_steps=0, patience=2, min_delta=0.1)
    s = fit(_Linear(), cfg, tmp_path / "es", log=lambda m: None)  # a tiny lr never improves by 0.1
    assert s["steps_run"] == 2 * s["steps_per_epoch"] and s["stop_reason"].startswith("early stopping")
