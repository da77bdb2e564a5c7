"""The embedding cache: reuse, corruption detection, resume, and keying."""

import json

import pytest

from fmb.errors import UsageError
from fmb.models.baseline import BaselineModel
from fmb.plugins import registry
from fmb.protocol.embed import EmbeddingCache, embed_dataset
from fmb.protocol.run import RunConfig, load_model, open_dataset


@pytest.fixture
def calls(monkeypatch):
    """Count baseline embed calls (rows embedded)."""
    seen = []
    original = BaselineModel.embed

    def counting(self, batch):
        seen.append(batch.num_rows)
        return original(self, batch)

    monkeypatch.setattr(BaselineModel, "embed", counting)
    return seen


def setup(toy, size=100):
    reg = registry()
    ds = open_dataset(reg, "toy", {"size": size})
    model = load_model(reg, RunConfig(model="baseline", detector="knn"), "cpu")
    return model, ds


def test_second_run_reuses_the_cache(toy, calls):
    model, ds = setup(toy)
    first = embed_dataset(model, ds, batch_size=16, shard_size=40)
    assert first.built_shards == 3 and sum(calls) == 100
    calls.clear()
    second = embed_dataset(model, ds, batch_size=16, shard_size=40)
    assert second.reused and calls == []
    assert second.table.equals(first.table)


def test_truncated_shard_is_rebuilt(toy, calls):
    model, ds = setup(toy)
    first = embed_dataset(model, ds, batch_size=16, shard_size=40)
    shard = first.path / "shard-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    calls.clear()
    notes = []
    again = embed_dataset(model, ds, batch_size=16, shard_size=40, notice=notes.append)
    assert again.rebuilt_shards == [1] and sum(calls) == 40
    assert "shard-00001.parquet" in notes[0]
    assert again.table.equals(first.table)


def test_interrupted_run_resumes_with_missing_shards(toy, calls):
    model, ds = setup(toy)
    first = embed_dataset(model, ds, batch_size=16, shard_size=40)
    manifest = json.loads((first.path / "manifest.json").read_text())
    del manifest["shards"]["2"]  # as if killed after shard 1: no done-marker for shard 2
    manifest["complete"] = False
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    (first.path / "shard-00002.json").unlink()
    calls.clear()
    again = embed_dataset(model, ds, batch_size=16, shard_size=40)
    assert again.built_shards == 1 and again.reused_shards == 2 and sum(calls) == 20
    assert json.loads((first.path / "manifest.json").read_text())["complete"] is True


def test_corrupt_manifest_rebuilds_everything(toy, calls):
    model, ds = setup(toy)
    first = embed_dataset(model, ds, batch_size=16, shard_size=40)
    (first.path / "manifest.json").write_text("{not json")
    calls.clear()
    again = embed_dataset(model, ds, batch_size=16, shard_size=40)
    assert again.built_shards == 3 and again.table.equals(first.table)


def test_key_changes_with_data_and_not_with_batch_size(toy):
    model, ds = setup(toy)
    _, other = setup(toy, size=101)
    assert EmbeddingCache(model, ds).key != EmbeddingCache(model, other).key
    a = embed_dataset(model, ds, batch_size=7, shard_size=40)
    b = embed_dataset(model, ds, batch_size=33, shard_size=40)
    assert a.key == b.key and b.reused


def test_cached_only_refuses_to_embed(toy, calls):
    model, ds = setup(toy)
    with pytest.raises(UsageError, match="run `fmb embed` first"):
        embed_dataset(model, ds, cached_only=True)
    assert calls == []


def test_nothing_half_written_is_left_on_failure(toy, monkeypatch):
    model, ds = setup(toy)

    def boom(self, batch):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(BaselineModel, "embed", boom)
    with pytest.raises(RuntimeError):
        embed_dataset(model, ds, shard_size=40)
    cache = EmbeddingCache(model, ds, 40)
    assert not list(cache.path.glob("shard-*")) and not list(cache.path.glob(".*tmp"))
