"""The embedding cache key covers data, options and weights: changed ones never reuse the cache,
unchanged ones always do (one test per kind of data set), and cached artefacts are verified."""

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import xxhash

from fmb import fingerprint as FP
from fmb.errors import DataError, ModelError
from fmb.models.base import Model, WeightsInfo
from fmb.plugins import registry
from fmb.protocol.embed import cache_key, embed_dataset, read_verified
from fmb.protocol.run import RunConfig, load_model, open_dataset
from fmb.testing.survey_table import survey_table
from fmb.testing.toy import ToyDataset

GRID = {"wavelength_start": "3600", "wavelength_step": "0.8"}
CHANGED = slice(20, 30)  # rows whose images the "v2" files scale by 4 (exact in float32: same bytes count)


def baseline():
    return load_model(registry(), RunConfig(model="baseline", detector="knn"), "cpu")


def parquet(path, **extra):
    return open_dataset(registry(), "parquet", {"path": str(path), **GRID, **extra})


def scaled(table: pa.Table) -> pa.Table:
    img = np.array(table.column("image").to_pylist(), np.float32)
    img[CHANGED] *= 4
    return table.set_column(
        table.schema.get_field_index("image"), "image", pa.array(img.tolist(), table.schema.field("image").type)
    )


def check_changed(first, second):
    """``second`` was embedded afresh, and only the changed rows' embeddings moved."""
    assert second.key != first.key and second.reused_shards == 0 and second.built_shards > 0
    a, b = first.matrix("image"), second.matrix("image")
    moved = ~np.isclose(a, b).all(axis=1)
    assert moved[CHANGED].all() and not moved[: CHANGED.start].any() and not moved[CHANGED.stop :].any()


def plain_parquet(table, path):
    pq.write_table(table, path, compression="none", use_dictionary=False, write_statistics=False)


# ------------------------------------------------------------------ one test per kind of data set


def test_parquet_rewritten_in_place_with_same_size_is_not_reused(tmp_path):
    path = tmp_path / "survey.parquet"
    t = survey_table(60)
    plain_parquet(t, path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # old enough for its hash to be memoised
    model = baseline()
    first = embed_dataset(model, parquet(path))
    again = embed_dataset(model, parquet(path))
    assert again.reused and again.key == first.key
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # same inode, same size, new bytes in the middle
        tmp = tmp_path / "v2.parquet"
        plain_parquet(scaled(t), tmp)
        fh.write(tmp.read_bytes())
    assert path.stat().st_size == size
    second = embed_dataset(model, parquet(path))
    check_changed(first, second)
    assert embed_dataset(model, parquet(path)).reused


def test_arrow_replaced_by_same_size_file_is_not_reused_but_a_moved_copy_is(tmp_path):
    """cases/r09_stale_arrow.sh: an Arrow file re-written with changed stamps (same size)."""
    path = tmp_path / "survey.arrow"
    t = survey_table(60)
    feather.write_feather(t, path, compression="uncompressed")
    model = baseline()
    first = embed_dataset(model, parquet(path))
    feather.write_feather(scaled(t), tmp_path / "v2.arrow", compression="uncompressed")
    assert (tmp_path / "v2.arrow").stat().st_size == path.stat().st_size
    os.replace(tmp_path / "v2.arrow", path)
    second = embed_dataset(model, parquet(path))
    check_changed(first, second)
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "renamed.arrow"
    moved.write_bytes(path.read_bytes())
    again = embed_dataset(model, parquet(moved, batch_rows=7))
    assert again.reused and again.key == second.key


def test_save_to_disk_folder_with_a_changed_arrow_shard_is_not_reused(tmp_path):
    pytest.importorskip("datasets")
    sys.path.insert(0, str(Path(__file__).parent))
    import fixtures_realdata as F

    folder = F.save_disk(tmp_path, "test", n=8, h=32, seed=1)
    opts = {"path": str(tmp_path), "split": "test", "source": "disk"}
    model = baseline()
    first = embed_dataset(model, open_dataset(registry(), "euclid-desi", opts))
    assert embed_dataset(model, open_dataset(registry(), "euclid-desi", opts)).reused
    arrow = sorted(folder.glob("*.arrow"))[0]
    with pa.OSFile(str(arrow)) as src:  # copied into memory (a memory map would die with the old file)
        table = pa.ipc.open_stream(src).read_all()
    vis = table.column("VIS_image").to_pylist()
    vis[3] = [[4 * v for v in row] for row in vis[3]]
    table = table.set_column(
        table.schema.get_field_index("VIS_image"),
        table.schema.field("VIS_image"),
        pa.array(vis, table.schema.field("VIS_image").type),
    )
    with pa.OSFile(str(tmp_path / "new.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp_path / "new.arrow", arrow)
    second = embed_dataset(model, open_dataset(registry(), "euclid-desi", opts))
    assert second.key != first.key and second.built_shards == 1
    moved = ~np.isclose(first.matrix("image"), second.matrix("image")).all(axis=1)
    assert moved.tolist() == [i == 3 for i in range(8)]
    assert embed_dataset(model, open_dataset(registry(), "euclid-desi", opts)).reused
    with_raw = open_dataset(registry(), "euclid-desi", {**opts, "units": "raw"})
    assert embed_dataset(model, with_raw).key != second.key


def test_synthetic_options_key_and_damaged_shards_are_regenerated():
    reg, model = registry(), baseline()
    opts = {"size": 60, "seed": 0, "chunk_size": 30, "stamp": 32}
    ds = open_dataset(reg, "synthetic", opts)
    first = embed_dataset(model, ds)
    assert embed_dataset(model, open_dataset(reg, "synthetic", opts)).reused
    other = embed_dataset(model, open_dataset(reg, "synthetic", {**opts, "seed": 1}))
    assert other.key != first.key and other.built_shards == 1
    assert not np.allclose(other.matrix("image"), first.matrix("image"))
    original = pq.read_table(ds.shard_path(1))
    shard = bytearray(ds.shard_path(1).read_bytes())
    shard[len(shard) // 2] ^= 0x01  # one flipped bit, same size
    ds.shard_path(1).write_bytes(bytes(shard))
    again = open_dataset(reg, "synthetic", opts)
    assert again.read_columns(["object_id"]).num_rows == 60
    assert again.generated_shards == 1 and pq.read_table(ds.shard_path(1)).equals(original)
    ds.marker_path(0).unlink()  # an unmarked shard is not trusted either
    third = open_dataset(reg, "synthetic", opts)
    assert third.read_columns(["object_id"]).num_rows == 60 and third.generated_shards == 1
    reused = embed_dataset(model, third)
    assert reused.reused and reused.table.equals(first.table)


def test_plugin_dataset_whose_fingerprint_ignores_its_options_cannot_alias(toy, monkeypatch):
    monkeypatch.setattr(ToyDataset, "fingerprint", property(lambda self: "0" * 64))
    reg, model = registry(), baseline()
    seed0 = embed_dataset(model, open_dataset(reg, "toy", {"size": 40, "seed": 0}))
    seed1 = embed_dataset(model, open_dataset(reg, "toy", {"size": 40, "seed": 1}))
    assert seed1.key != seed0.key and seed1.built_shards == 1
    assert seed1.table.column("is_anomaly").equals(ToyDataset(size=40, seed=1)._table.column("is_anomaly"))
    assert not np.allclose(seed0.matrix("image"), seed1.matrix("image"))
    assert embed_dataset(model, open_dataset(reg, "toy", {"size": 40, "seed": 0})).reused


def test_data_changing_while_embedding_is_refused(toy, monkeypatch):
    ds = open_dataset(registry(), "toy", {"size": 40})
    prints = iter(["a" * 64, "b" * 64])
    monkeypatch.setattr(ToyDataset, "fingerprint", property(lambda self: next(prints)))
    with pytest.raises(DataError, match="changed while it was being embedded"):
        embed_dataset(baseline(), ds)


# ------------------------------------------------------------------ model options and weights


class Forgetful(Model):
    """A plugin model whose ``settings()`` forgets the option that changes its embeddings."""

    def embed(self, batch):
        return {"image": np.full((batch.num_rows, 2), float(self.options["scale"]), np.float32)}

    def settings(self):
        return {}


def forgetful(options, weights=None):
    spec = registry().model("baseline")
    return Forgetful(spec, weights or WeightsInfo(kind="none"), dict(options))


def test_model_options_enter_the_key_even_when_settings_forget_them(toy):
    ds = open_dataset(registry(), "toy", {"size": 40})
    assert cache_key(forgetful({"scale": 1}), ds)[0] != cache_key(forgetful({"scale": 2}), ds)[0]
    assert cache_key(forgetful({"scale": 1}), ds)[0] == cache_key(forgetful({"scale": 1}), ds)[0]


def test_core_resolves_defaults_and_user_options():
    reg = registry()
    plain = load_model(reg, RunConfig(model="example", detector="knn"), "cpu")
    assert plain.resolved_options == {"projection_seed": 0}
    given = load_model(reg, RunConfig(model="example", detector="knn", model_options={"projection_seed": 3}), "cpu")
    assert given.resolved_options == {"projection_seed": 3}


def test_weights_key_on_content_not_location(toy):
    ds = open_dataset(registry(), "toy", {"size": 40})

    def key(**w):
        return cache_key(forgetful({"scale": 1}, WeightsInfo(**w)), ds)[0]

    same = key(kind="path", location="/a/ckpt.pt", sha256="1" * 64)
    assert key(kind="hf", location="org/repo", revision="abc", sha256="1" * 64) == same
    assert key(kind="path", location="/a/ckpt.pt", sha256="2" * 64) != same
    assert key(kind="random", seed=1) != key(kind="random", seed=2)
    with pytest.raises(ModelError, match="no content hash"):
        key(kind="hf", location="org/repo", revision="abc")


# ------------------------------------------------------------------ content hashes and verification


def test_file_hash_is_full_content_and_memoised(tmp_path, monkeypatch):
    path = tmp_path / "data.bin"
    payload = bytearray(os.urandom(3 << 20))
    path.write_bytes(bytes(payload))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert FP.file_hash(path) == xxhash.xxh3_128(bytes(payload)).hexdigest()
    reads = []
    real = FP.hash_stream
    monkeypatch.setattr(FP, "hash_stream", lambda fh: reads.append(1) or real(fh))
    assert FP.file_hash(path) == xxhash.xxh3_128(bytes(payload)).hexdigest() and reads == []
    payload[(3 << 20) // 2] ^= 0xFF  # a byte in the middle MiB, same size
    with open(path, "r+b") as fh:
        fh.write(bytes(payload))
    assert FP.file_hash(path) == xxhash.xxh3_128(bytes(payload)).hexdigest() and reads == [1]


def test_flipped_byte_in_an_embedding_shard_is_rebuilt_and_never_read(toy):
    model, ds = baseline(), open_dataset(registry(), "toy", {"size": 40})
    first = embed_dataset(model, ds, shard_size=20)
    assert read_verified(first.path)[0].equals(first.table)
    shard = first.path / "shard-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x04
    shard.write_bytes(bytes(data))
    table, why = read_verified(first.path)
    assert table is None and "shard-00001.parquet" in why
    again = embed_dataset(model, ds, shard_size=20)
    assert again.rebuilt_shards == [1] and again.table.equals(first.table)
