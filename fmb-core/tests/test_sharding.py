"""Sharded, streaming embedding: shards cover every object once, concurrent writers, resume, workers."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fmb.io
from fmb.cli import cli
from fmb.errors import UsageError
from fmb.plugins import registry
from fmb.protocol import embed as E
from fmb.protocol import prefetch
from fmb.protocol.prefetch import DEPTH, prefetch_batches
from fmb.protocol.run import RunConfig, load_model, open_dataset


def setup(size=50):
    reg = registry()
    ds = open_dataset(reg, "toy", {"size": size})
    return load_model(reg, RunConfig(model="baseline", detector="knn"), "cpu"), ds


@pytest.mark.parametrize("count", [1, 3, 4, 7, 60])
def test_shards_cover_every_object_exactly_once(toy, count):
    model, ds = setup()
    reference = E.embed_dataset(model, ds, batch_size=8, shard_size=1000, workers=0).table
    ids = []
    for i in range(count):
        res = E.embed_shard(model, ds, i, count, batch_size=8)
        if res.marker is not None:
            ids += pq.read_table(res.path / f"shard-{i:05d}.parquet").column("object_id").to_pylist()
    assert sorted(ids) == list(range(50))
    full = E.embed_dataset(model, ds, cached_only=True)  # the reader adopts the shard layout
    assert full.table.equals(reference)
    assert json.loads((full.path / "manifest.json").read_text())["complete"] is True


def test_a_shard_writes_only_its_own_files(toy):
    model, ds = setup()
    res = E.embed_shard(model, ds, 2, 4, batch_size=8)
    assert res.rows == (26, 39)
    assert sorted(p.name for p in res.path.glob("shard-*")) == ["shard-00002.json", "shard-00002.parquet"]
    with pytest.raises(UsageError, match="run `fmb embed` first"):
        E.embed_dataset(model, ds, cached_only=True)


def test_concurrent_shard_writers_assemble_one_complete_manifest(toy):
    model, ds = setup(64)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: E.embed_shard(model, ds, i, 4, batch_size=8), range(4)))
    full = E.embed_dataset(model, ds, cached_only=True)
    manifest = json.loads((full.path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["shard_size"] == 16 and len(manifest["shards"]) == 4
    assert full.table.column("object_id").to_pylist() == list(range(64))


def test_a_manifest_assembled_before_another_writers_marker_is_rewritten(toy):
    """The race CI hit: writer A assembles before writer B's marker lands, B renames its manifest, then A
    renames its older one last. A assembles again after its rename and rewrites until the markers agree."""
    model, ds = setup(64)
    for i in range(4):
        E.embed_shard(model, ds, i, 4, batch_size=8)
    a = E.EmbeddingCache(model, ds, 16)
    real = a._assemble
    calls = []

    def late(*args):
        m = real()
        if not calls:  # A's first assembly predates shard 3's marker
            m = {**m, "shards": {k: v for k, v in m["shards"].items() if k != "3"}, "complete": False}
        calls.append(m)
        return m

    a._assemble = late
    a.write_manifest()
    on_disk = json.loads(a.manifest_path.read_text())
    assert len(calls) >= 2 and on_disk["complete"] and sorted(on_disk["shards"]) == ["0", "1", "2", "3"]


def test_a_reader_repairs_a_manifest_that_misses_a_finished_shard(toy):
    """All markers present but the manifest on disk lost the race: the next reader rewrites it, so
    readers that know only the entry's folder (detect, probes, report) see it complete."""
    model, ds = setup(64)
    for i in range(4):
        E.embed_shard(model, ds, i, 4, batch_size=8)
    cache = E.EmbeddingCache(model, ds, 16)
    stale = {**cache.manifest, "shards": {k: v for k, v in cache.manifest["shards"].items() if k != "2"}}
    fmb.io.write_json({**stale, "complete": False}, cache.manifest_path)
    assert E.read_verified(cache.path)[0] is None
    full = E.embed_dataset(model, ds, cached_only=True)
    table, why = E.read_verified(full.path)
    assert why == "" and table.column("object_id").to_pylist() == list(range(64))


def test_a_shard_without_its_marker_is_not_complete(toy, monkeypatch):
    """Killed between the shard's bytes and its done-marker: the shard is rebuilt, never read."""
    model, ds = setup()
    real = fmb.io.write_json

    def die_on_marker(obj, path):
        if str(path).endswith("shard-00001.json"):
            raise KeyboardInterrupt  # as if killed here
        real(obj, path)

    monkeypatch.setattr(E, "write_json", die_on_marker)
    with pytest.raises(KeyboardInterrupt):
        E.embed_dataset(model, ds, batch_size=8, shard_size=20)
    monkeypatch.setattr(E, "write_json", real)
    cache = E.EmbeddingCache(model, ds, 20)
    assert cache.shard_file(1).exists() and not cache.shard_ok(1) and cache.shard_ok(0)
    again = E.embed_dataset(model, ds, batch_size=8, shard_size=20)
    assert again.reused_shards == 1 and again.built_shards == 2


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_workers_give_the_same_embeddings(toy, workers):
    model, ds = setup()
    res = E.embed_dataset(model, ds, batch_size=7, shard_size=23, workers=workers)
    assert res.table.column("object_id").to_pylist() == list(range(50))
    assert pc.all(pc.is_valid(res.table.column("image"))).as_py()


@pytest.mark.parametrize("workers", [1, 3])
def test_prefetch_is_ordered_bounded_and_passes_errors_on(toy, workers, monkeypatch):
    monkeypatch.setattr(prefetch, "BLOCK_ROWS", 16)  # pool jobs of 4 batches
    _, ds = setup(200)
    produced = []
    original = ds.iter_batches

    def counting(batch_size, start=0, stop=None):
        for b in original(batch_size, start=start, stop=stop):
            produced.append(b.num_rows)
            yield b

    ds.iter_batches = counting
    it = prefetch_batches(ds, 4, 0, 200, workers)
    first = next(it)
    time.sleep(0.3)
    ahead = len(produced) - 1  # of 50 batches
    assert ahead <= (DEPTH + 1 if workers == 1 else (workers * DEPTH + 1) * 4)  # bounded look-ahead
    rest = [b.column("object_id")[0].as_py() for b in it]
    assert [first.column("object_id")[0].as_py(), *rest] == list(range(0, 200, 4))

    def broken(batch_size, start=0, stop=None):
        yield from original(batch_size, start=start, stop=min(stop, start + 4))
        raise OSError("disk gone")

    ds.iter_batches = broken
    with pytest.raises(OSError, match="disk gone"):
        list(prefetch_batches(ds, 4, 0, 200, workers))
    assert not [t for t in threading.enumerate() if t.name.startswith("fmb-prefetch")]


def test_parse_shard():
    assert E.parse_shard("3/8") == (3, 8)
    for bad in ("8/8", "-1/4", "a/b", "3", "0/0"):
        with pytest.raises(UsageError, match="--shard"):
            E.parse_shard(bad)
    assert E.shard_size_for(64, 4) == 16 and E.shard_size_for(10, 4) == 3 and E.shard_size_for(2, 8) == 1


def test_cli_embed_shard_then_detect_then_status(toy, tmp_path):
    runner = CliRunner()
    args = ["--model", "baseline", "--dataset", "toy:size=40", "-q"]
    out = tmp_path / "run"
    r = runner.invoke(cli, ["embed", *args, "--shard", "1/4"])
    assert r.exit_code == 0, r.output
    assert "shard 1/4 rows 10-20: built" in r.output
    r = runner.invoke(cli, ["detect", *args, "--detector", "iforest", "--output", str(out)])
    assert r.exit_code == 2 and "shard 0 of 4 missing" in r.output
    r = runner.invoke(
        cli,
        ["run", *args, "--detector", "iforest", "--shards", "4", "--output", str(out), "--workers", "2", "--no-report"],
    )
    assert r.exit_code == 0, r.output
    assert (out / "results.json").exists() and (out / "fmb-run.json").exists()
    r = runner.invoke(cli, ["status", str(out), "--json"])
    info = json.loads(r.output)
    assert info["complete"] and info["embeddings"][0]["done"] == 4 and info["executor"] == "local"
    r = runner.invoke(cli, ["status", str(tmp_path)])  # a folder of run folders: a matrix folder
    assert r.exit_code == 0 and "detect run: results written" in r.output, r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(cli, ["status", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "not an fmb run folder" in r.output
