"""The synthetic survey's split option: train objects are additional objects, disjoint from the survey."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fmb.data.canonical import DataError
from fmb.datasets.synthetic import open_dataset
from fmb.datasets.synthetic.anomalies import ANOMALY_CLASSES, class_counts

COLS = ["object_id", "anomaly_class", "redshift", "log_mstar"]


def _read(ds) -> pa.Table:
    return ds.read_columns(COLS)


def test_train_is_disjoint_from_the_survey_and_test_is_the_survey(fmb_home):
    survey = open_dataset(size=40, chunk_size=20)
    test = open_dataset(size=40, chunk_size=20, split="test")
    train = open_dataset(size=40, chunk_size=20, split="train", train_size=30)
    a, t, tr = _read(survey), _read(test), _read(train)
    # test is the survey: the same objects, bytes and cache folder
    assert test.fingerprint == survey.fingerprint and t.equals(a)
    assert test.options()["split"] == "test" and survey.options()["split"] == "all"
    # train: train_size further ids after the survey's, other objects
    ids = tr.column("object_id").to_pylist()
    assert ids == list(range(40, 70)) and len(train) == 30
    assert not set(ids) & set(a.column("object_id").to_pylist())
    assert train.fingerprint != survey.fingerprint and train.options()["train_size"] == 30
    z_train, z_survey = tr.column("redshift").to_numpy(), a.column("redshift").to_numpy()
    assert not np.isin(z_train, z_survey).any()  # no object of the survey reappears among the training ones
    # equal ids are the same objects only within one generation (the overlap check of retrained weights)
    assert test.object_pool == survey.object_pool != train.object_pool


def test_split_is_deterministic_and_independent_of_the_read_order(fmb_home, tmp_path, monkeypatch):
    first = _read(open_dataset(size=30, chunk_size=10, split="train", train_size=25))
    monkeypatch.setenv("FMB_HOME", str(tmp_path / "other"))  # regenerated from nothing
    again = open_dataset(size=30, chunk_size=10, split="train", train_size=25)
    assert _read(again).equals(first)
    # batches of any size, from any start, give the same rows for the same ids
    parts = [b.select(COLS) for b in again.iter_batches(7, start=12)] + [
        b.select(COLS) for b in again.iter_batches(4, stop=12)
    ]
    merged = pa.Table.from_batches(parts).sort_by("object_id")
    assert merged.equals(first.sort_by("object_id"))
    # the split of an object depends on its id only, not on the shards: another chunk size keeps the ids
    other = open_dataset(size=30, chunk_size=25, split="train", train_size=25)
    assert _read(other).column("object_id").to_pylist() == first.column("object_id").to_pylist()


def test_train_split_has_the_survey_rates(fmb_home):
    train = open_dataset(size=50, split="train", train_size=400, rates="lens=0.02;agn=0.01")
    got = dict(zip(*np.unique(_read(train).column("anomaly_class").to_numpy(zero_copy_only=False), return_counts=True)))
    want = class_counts(400, {**{c: 0.0 for c in ANOMALY_CLASSES}, "lens": 0.02, "agn": 0.01})
    assert got.get("lens") == want["lens"] == 8 and got.get("agn") == want["agn"] == 4
    assert sum(got.values()) == 400 and len(train) == 400


@pytest.mark.parametrize(
    ("opts", "message"),
    [({"split": "validation"}, r"split='validation' must be one of all, train, test"), ({"train_size": 0}, "train_")],
)
def test_bad_split_options_are_one_line_errors(opts, message):
    with pytest.raises(DataError, match=message):
        open_dataset(size=20, **opts)
