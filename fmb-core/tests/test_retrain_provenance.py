"""Retrained weights carry their provenance; a run scoring the objects they were trained on is flagged."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest

from fmb.datasets.synthetic import open_dataset
from fmb.errors import ModelError
from fmb.retrained import retrained_provenance, training_overlap
from fmb.testing.training import LinearTask
from fmb.training import TrainingConfig, fit


@pytest.fixture()
def trained(tmp_path):
    pytest.importorskip("torch")
    train = open_dataset(size=30, split="train", train_size=20)  # ids 30..49; nothing is generated here
    ids = np.arange(30, 50)
    about = {
        "model": "m",
        "dataset": train.name,
        "dataset_spec": "synthetic:size=30,split=train,train_size=20",
        "dataset_options": {"size": 30, "split": "train", "train_size": 20},
        "dataset_fingerprint": train.fingerprint,
        "dataset_pool": train.object_pool,
    }
    cfg = TrainingConfig(epochs=3, batch_size=4, warmup_steps=1, seed=7, patience=0)
    summary = fit(LinearTask(ids), cfg, tmp_path / "run", log=lambda m: None, about=about)
    return tmp_path / "run", summary, ids


def test_retrain_json_records_the_weights_hash_and_the_training_objects(trained):
    out, summary, ids = trained
    sha = hashlib.sha256((out / "w.pt").read_bytes()).hexdigest()
    assert summary["sha256"] == sha and summary["weights_file"] == "w.pt"
    prov = retrained_provenance(out / "w.pt", sha)
    assert prov["split"] == "train" and prov["seed"] == 7 and prov["steps"] == summary["steps_run"] == 12
    assert prov["dataset_spec"] == "synthetic:size=30,split=train,train_size=20" and prov["sha256"] == sha
    assert prov["base_weights"]["kind"] == "random" and prov["n_train"] + prov["n_val"] == len(ids)
    assert retrained_provenance(out, sha) == prov  # the folder works as well as the file
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(out / "objects.parquet").column("object_id").to_pylist()) == ids.tolist()


def test_provenance_of_other_bytes_is_not_recorded(trained, tmp_path):
    out, _, _ = trained
    with pytest.warns(UserWarning, match="describes weights with sha256"):
        assert retrained_provenance(out / "w.pt", "0" * 64) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "w.pt").write_bytes(b"x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert retrained_provenance(plain / "w.pt", "") is None  # not written by fmb retrain: nothing to say
    (plain / "retrain.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"retrain\.json: unreadable"):
        retrained_provenance(plain / "w.pt", "")


def test_overlap_counts_scored_objects_the_weights_were_trained_on(trained):
    out, summary, ids = trained
    prov = retrained_provenance(out / "w.pt", summary["sha256"])
    same_train = open_dataset(size=30, split="train", train_size=20)
    held_out = open_dataset(size=30, split="test")
    bigger_train = open_dataset(size=30, split="train", train_size=40)  # ids 30..69, but other objects
    other_survey = open_dataset(size=30, seed=1, split="train", train_size=20)  # same ids, other objects
    assert training_overlap(prov, same_train, ids.tolist()) == 20
    assert training_overlap(prov, held_out, list(range(30))) == 0
    assert training_overlap(prov, bigger_train, list(range(30, 70))) == 0
    assert training_overlap(prov, other_survey, ids.tolist()) == 0
    assert training_overlap(None, same_train, ids.tolist()) is None  # not retrained weights: nothing to check
    assert json.loads((out / "retrain.json").read_text())["objects_file"] == "objects.parquet"


def test_retrain_trains_on_the_train_split_unless_told(toy):
    from fmb.commands.retrain import training_split
    from fmb.plugins import registry

    said: list[str] = []
    reg = registry()
    assert training_split(reg, "synthetic", {"size": 60}, said.append) == {"size": 60, "split": "train"}
    assert not said
    assert training_split(reg, "synthetic", {"split": "test"}, said.append) == {"split": "test"}
    assert len(said) == 1 and "split=test" in said[0] and "trained_on_scored_objects" in said[0]
    assert training_split(reg, "toy", {"size": 8}, said.append) == {"size": 8}  # no splits: every object
    assert len(said) == 1


def test_overlap_follows_weights_retrained_from_retrained_weights(tmp_path):
    """A second retraining stage started from the first stage's weights (AION --part codecs, then --part
    encoder) has seen both stages' objects: the check counts the union, not only the last stage's."""
    import pyarrow as pa

    from fmb.io import write_parquet
    from fmb.retrained import overlap_sources, training_chain

    train = open_dataset(size=30, split="train", train_size=20)

    def stage(name, ids, base, on=train, spec="synthetic:size=30,split=train,train_size=20"):
        folder = tmp_path / name
        folder.mkdir()
        write_parquet(pa.table({"object_id": pa.array(ids, pa.int64())}), folder / "objects.parquet")
        return {
            "folder": str(folder),
            "dataset": on.name,
            "dataset_pool": on.object_pool,
            "dataset_spec": spec,
            "base_weights": base,
        }

    codecs = stage("codecs", [30, 31, 32], {"kind": "random", "seed": 0})
    encoder = stage("encoder", [40, 41], {"kind": "path", "retrained": codecs})
    assert [s["folder"] for s in training_chain(encoder)] == [encoder["folder"], codecs["folder"]]
    assert training_overlap(encoder, train, [30, 31, 40, 49]) == 3  # two from the first stage, one from the last
    assert training_overlap(codecs, train, [30, 31, 40, 49]) == 2
    # the warning names the stages whose objects were scored: here only the first one
    other = open_dataset(size=30, seed=1, split="train", train_size=20)  # same ids, other objects
    on_other = stage("other", [30, 31, 40], {"kind": "path", "retrained": codecs}, other, "synthetic:seed=1")
    assert training_overlap(on_other, train, [30, 31, 40, 49]) == 2
    assert overlap_sources(on_other, train, [30, 31, 40, 49]) == ["synthetic:size=30,split=train,train_size=20"]
    assert overlap_sources(on_other, train, [49]) == [] and training_overlap(on_other, train, [49]) == 0
    looped = stage("looped", [49], None)
    looped["base_weights"] = {"retrained": looped}  # a stage naming itself ends the chain
    assert training_overlap(looped, train, [30, 49]) == 1
