"""One run path: plain and sharded `fmb run` give the same results and both report; `fmb detect` never
builds the model; a new shard layout reuses the cache."""

import json

import pyarrow.parquet as pq
from click.testing import CliRunner

import fmb
import fmb.models.baseline
from fmb.cli import cli
from fmb.plugins import registry
from fmb.protocol import embed as E
from fmb.protocol.run import RunConfig, load_model, open_dataset
from fmb.specs import ModelSpec
from fmb.testing.cli import fmb_run
from fmb.testing.plugins import registered_plugin


class FragilePlugin:
    @fmb.hookimpl
    def register_models(self, register):
        base = registry().model("baseline")
        register(
            ModelSpec(
                name="fragile",
                description="baseline whose construction can be made to raise",
                loader="fmb.models.baseline:load_model",
                version="1",
                license="MIT",
                modalities=base.modalities,
                outputs=dict(base.outputs),
            )
        )


def invoke(*args):
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, r.output
    return r


def _scores(path):
    t = pq.read_table(path / "scores.parquet")
    return t.replace_schema_metadata({k: v for k, v in (t.schema.metadata or {}).items() if k != b"fmb.run_id"})


def test_plain_and_sharded_run_give_identical_results_and_both_report(toy, tmp_path):
    args = ["run", "--model", "baseline", "--detector", "iforest", "--dataset", "toy:size=60", "-q"]
    plain = invoke(*args, "--output", str(tmp_path / "plain"))
    sharded = invoke(*args, "--shards", "2", "--output", str(tmp_path / "sharded"))
    a = json.loads((tmp_path / "plain" / "results.json").read_text())
    b = json.loads((tmp_path / "sharded" / "results.json").read_text())
    assert a["modalities"].keys() == b["modalities"].keys() == {"image", "spectrum", "joint"}
    for m in a["modalities"]:
        assert a["modalities"][m]["metrics"] == b["modalities"][m]["metrics"]
    assert _scores(tmp_path / "plain").equals(_scores(tmp_path / "sharded"))
    assert b["embedding"]["shards_built"] == 0  # its own layout (2 x 30) is re-laid out from the cache, not embedded
    for d, r in (("plain", plain), ("sharded", sharded)):
        assert (tmp_path / d / "report.html").exists()
        assert "per anomaly class" in r.output  # the per-class table, on every path
    assert not (tmp_path / "plain" / "fmb-run.json").exists() and (tmp_path / "sharded" / "fmb-run.json").exists()


def test_sharded_run_refuses_duplicate_ids_like_the_plain_one(tmp_path):
    from fmb.testing.survey_table import survey_table, write_table

    t = survey_table(30, seed=1, n_anom=3)
    ids = t.column("object_id").to_pylist()
    ids[7] = ids[3]
    import pyarrow as pa

    spec = write_table(
        t.set_column(t.schema.get_field_index("object_id"), "object_id", pa.array(ids)), tmp_path / "dup.parquet"
    )
    for extra in ([], ["--shards", "2"]):
        r = fmb_run(tmp_path / f"out{len(extra)}", *extra, dataset=spec, code=2)
        assert "duplicate" in r.output.lower(), r.output


def test_detect_after_embed_never_constructs_the_model(toy, tmp_path, monkeypatch):
    def construction_raises(*args, **kwargs):
        raise RuntimeError("the fragile model was constructed")

    with registered_plugin(FragilePlugin(), "fragile"):
        common = ["--model", "fragile", "--dataset", "toy:size=40", "-q"]
        invoke("embed", *common)
        monkeypatch.setattr(fmb.models.baseline, "load_model", construction_raises)  # the spec's loader
        invoke("detect", *common, "--detector", "knn", "--output", str(tmp_path / "d"))
        # and without an embedding for this request (another seed) it says so, still without building it
        r = CliRunner().invoke(
            cli, ["detect", *common, "--seed", "5", "--detector", "knn", "--output", str(tmp_path / "e")]
        )
        assert r.exit_code == 2 and "run `fmb embed` first" in r.output, r.output
    res = json.loads((tmp_path / "d" / "results.json").read_text())
    assert res["model"]["name"] == "fragile" and res["model"]["weights"]["kind"] == "none"
    assert res["modalities"]["joint"]["metrics"]["auroc"] > 0.5


def test_new_shard_size_relays_out_without_corrupt_notice_or_embedding(toy):
    reg = registry()
    ds = open_dataset(reg, "toy", {"size": 50})
    model = load_model(reg, RunConfig(model="baseline", detector="knn"), "cpu")
    reference = E.embed_dataset(model, ds, batch_size=8, shard_size=20, workers=0).table
    calls, notes = [], []
    original = model.embed
    model.embed = lambda batch: calls.append(batch.num_rows) or original(batch)
    again = E.embed_dataset(model, ds, batch_size=8, shard_size=15, notice=notes.append, workers=0)
    assert calls == []  # nothing embedded again
    assert not any("corrupt or missing" in n for n in notes) and any("re-laid out" in n for n in notes)
    assert again.table.equals(reference)
    cache = E.EmbeddingCache(model, ds)
    assert cache.shard_size == 15 and cache.n_shards == 4 and cache.manifest["complete"]
    assert not E.shard_path(cache.path, 4).exists()  # no stale shard of the old layout is left past the end
    shard = E.embed_shard(model, ds, 1, 2, batch_size=8, notice=notes.append)  # back to 2 x 25 for one task
    assert calls == [] and not shard.built and shard.rows == (25, 50)
