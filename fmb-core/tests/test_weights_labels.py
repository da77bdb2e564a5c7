"""Every view of a run (end-of-run summary, leaderboard table/csv/parquet, report) names its weights' kind, where
retrained weights started (random or official), and flags rows scored on the objects the weights were trained on.

A test model plugin (``tuned``: the baseline's features, but it loads ``--weights PATH`` and records the bytes'
hash as a real plugin does) lets core attach the ``retrain.json`` that :func:`fmb.training.fit` wrote."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fmb import hookimpl
from fmb.models.base import WeightsInfo
from fmb.specs import ModelSpec
from fmb.testing.cli import fmb_cli, fmb_run
from fmb.testing.plugins import registered_plugin
from fmb.testing.training import WEIGHTS_FILE

TRAIN = "synthetic:size=40,split=train,train_size=40"  # ids 40..79, what the weights are trained on
TEST = "synthetic:size=40,split=test"  # ids 0..39: held out


def _load_tuned(spec, weights="auto", device="cpu", options=None, seed=0):
    from fmb.models.baseline import BaselineModel

    if weights == "random":
        info = WeightsInfo(kind="random", seed=seed)
    elif weights == "auto":  # stands for the plugin's official hub weights
        info = WeightsInfo(kind="hf", location="test/tuned", revision="main", sha256="0" * 64)
    else:
        p = Path(weights)
        f = p / WEIGHTS_FILE if p.is_dir() else p
        info = WeightsInfo(kind="path", location=str(p), sha256=hashlib.sha256(f.read_bytes()).hexdigest())
    return BaselineModel(spec, info, {})


@pytest.fixture()
def tuned(monkeypatch, fmb_home):
    from fmb.builtin.models import IMAGE_DIM, SPECTRUM_DIM

    mod = types.ModuleType("fmb_test_tuned")
    mod.load = _load_tuned
    monkeypatch.setitem(sys.modules, "fmb_test_tuned", mod)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            outputs = {"image": IMAGE_DIM, "spectrum": SPECTRUM_DIM, "joint": IMAGE_DIM + SPECTRUM_DIM}
            register(
                ModelSpec(
                    name="tuned",
                    description="baseline features with loadable weights",
                    loader="fmb_test_tuned:load",
                    modalities=("image", "spectrum"),
                    outputs=outputs,
                )
            )

    with registered_plugin(Plugin(), "tuned"):
        yield


def _retrain(folder: Path, ids, start: WeightsInfo) -> Path:
    """``fmb.training.fit`` of the toy task on ``ids`` of TRAIN from ``start``: a run folder as `fmb retrain`'s."""
    from fmb.datasets.synthetic import open_dataset
    from fmb.testing.training import LinearTask
    from fmb.training import TrainingConfig, fit

    train = open_dataset(size=40, split="train", train_size=40)
    about = {
        "model": "tuned",
        "dataset": train.name,
        "dataset_spec": TRAIN,
        "dataset_options": {"size": 40, "split": "train", "train_size": 40},
        "dataset_fingerprint": train.fingerprint,
        "dataset_pool": train.object_pool,
    }
    cfg = TrainingConfig(epochs=1, batch_size=8, warmup_steps=1, seed=3, patience=0)
    fit(LinearTask(ids, start), cfg, folder, log=lambda m: None, about=about)
    return folder


@pytest.fixture()
def from_random(tmp_path):
    pytest.importorskip("torch")
    return _retrain(tmp_path / "ret", np.arange(40, 80), WeightsInfo(kind="random", seed=0))


def _runs(tmp_path, weights):
    """Ra: TRAIN scored with ``weights``; Rb: TEST with them; Rc: TEST with the official weights."""
    ra, rb, rc = tmp_path / "Ra", tmp_path / "Rb", tmp_path / "Rc"
    fmb_run(ra, "--weights", weights, "--no-report", model="tuned", dataset=TRAIN)
    fmb_run(rb, "--weights", weights, "--no-report", model="tuned", dataset=TEST)
    fmb_run(rc, "--no-report", model="tuned", dataset=TEST)
    return ra, rb, rc


def test_leaderboard_carries_weights_kind_origin_and_flags_training_objects(tuned, from_random, tmp_path):
    ra, rb, rc = _runs(tmp_path, from_random)
    out = fmb_cli("leaderboard", ra, rb, rc, "--out", tmp_path / "lb").output
    df = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert len(df) == 9  # 3 runs x 3 outputs
    by_run = {Path(__import__("json").loads(d)[0]).name: g for d, g in df.groupby("run_dirs")}
    a, b, c = by_run["Ra"], by_run["Rb"], by_run["Rc"]
    assert set(a["weights_kind"]) == set(b["weights_kind"]) == {"retrained"} and set(c["weights_kind"]) == {"official"}
    assert set(a["weights_origin"]) == set(b["weights_origin"]) == {"retrained from random (seed 0)"}
    assert set(c["weights_origin"]) == {"official"}
    assert set(a["trained_on_scored_objects"]) == {40}  # every TRAIN object was trained or validated on
    assert ",40," in (tmp_path / "lb" / "leaderboard.csv").read_text()  # a count, not 40.0
    assert set(b["trained_on_scored_objects"]) == {0} and c["trained_on_scored_objects"].isna().all()
    assert not a["held_out"].any() and b["held_out"].all() and c["held_out"].all()
    parquet = pd.read_parquet(tmp_path / "lb" / "leaderboard.parquet")
    assert parquet["weights_origin"].tolist() == df["weights_origin"].tolist()
    assert parquet["held_out"].tolist() == df["held_out"].tolist()
    # the printed table: the 3 TRAIN rows (and only they) marked, with one footnote each naming the count
    flagged = [ln for ln in out.splitlines() if ln.startswith("|") and "†" in ln]
    assert len(flagged) == 3 and all("train" in ln and "split='test'" not in ln for ln in flagged)
    notes = [ln for ln in out.splitlines() if "not held-out numbers" in ln]
    assert len(notes) == 3 and all("trained on 40 of the scored objects" in ln for ln in notes)
    ranks = sorted(int(n.split(":")[0].lstrip("#")) for n in notes)
    assert ranks == sorted(a["rank"].tolist())
    assert "retrained from random (seed 0)" in out and "official" in out


def test_report_and_summary_say_retrained_from_where_and_trained_on(tuned, from_random, tmp_path):
    ra, rb, rc = _runs(tmp_path, from_random)
    pages = {}
    for r in (ra, rb, rc):
        fmb_cli("report", r, "--top-k", 4, "--embedding-map", "pca")
        pages[r.name] = (r / "report.html").read_text()
    assert "retrained from random (seed 0)" in pages["Ra"] and "retrained from random (seed 0)" in pages["Rb"]
    assert "trained on 40 of the scored objects" in pages["Ra"] and "not held-out numbers" in pages["Ra"]
    assert "not held-out numbers" not in pages["Rb"] and "trained on scored objects" in pages["Rb"]
    assert "retrained" not in pages["Rc"] and "not held-out" not in pages["Rc"] and "official" in pages["Rc"]
    # the end-of-run summary (not -q)
    out = fmb_cli(
        "run", "--model", "tuned", "--weights", from_random, "--detector", "iforest", "--dataset", TRAIN,
        "--output", tmp_path / "Rd", "--no-report",
    ).output  # fmt: skip
    assert "retrained from random (seed 0) †" in out and "† not held-out numbers" in out
    assert "trained on 40 of the scored objects" in out


def test_chains_name_their_origin(tuned, from_random, tmp_path):
    """A second stage from the first stage's folder started, in the end, from random; weights retrained from
    the official ones say so; neither is mistaken for the other."""
    from fmb.plugins import registry
    from fmb.retrained import weights_facts

    first = registry().load_model("tuned", weights=str(from_random)).weights
    assert first.retrained and first.kind == "path"
    second = _retrain(tmp_path / "second", np.arange(40, 50), first)
    official = _retrain(tmp_path / "off", np.arange(40, 50), WeightsInfo(kind="hf", location="test/tuned"))
    for folder, label in (
        (second, "retrained (2 stages) from random (seed 0)"),
        (official, "retrained from official"),
    ):
        w = registry().load_model("tuned", weights=str(folder)).weights.to_dict()
        assert weights_facts(w) == {"kind": "retrained", "label": label, "trained_on_scored_objects": None,
                                    "held_out": True}  # fmt: skip
    fmb_run(tmp_path / "R2", "--weights", second, "--no-report", model="tuned", dataset=TEST)
    out = fmb_cli("leaderboard", tmp_path / "R2", "--no-write").output
    assert "retrained (2 stages) from random (seed 0)" in out and "†" not in out
    assert weights_facts({"kind": "random", "seed": 4}) == {
        "kind": "random", "label": "random (seed 4)", "trained_on_scored_objects": None, "held_out": True
    }  # fmt: skip
