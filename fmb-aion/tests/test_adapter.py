"""The learned Euclid -> HSC adapter: training lowers the cycle loss; checkpoints; the retrain command."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import ModelError
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb_aion.adapter import EuclidHSCAdapter, freeze, load_adapter, save_adapter, train_step
from fmb_aion.bands import get_mapping
from fmb_aion.model import AionModel
from fmb_aion.preprocess import images_from_batch
from fmb_aion.weights import Components, WeightsInfo


@pytest.fixture(scope="module")
def images():
    return torch.from_numpy(images_from_batch(next(ToyDataset(size=2).iter_batches(2)), 0.168).flux)


def test_training_lowers_the_cycle_loss(tiny_parts, images):
    codec = freeze(tiny_parts[1])
    torch.manual_seed(0)
    adapter = EuclidHSCAdapter()
    opt = torch.optim.Adam(adapter.parameters(), lr=3e-3)
    with torch.no_grad():
        first = float(adapter.cycle_loss(images, codec))
    for _ in range(4):
        train_step(adapter, codec, images, opt)
    with torch.no_grad():
        last = float(adapter.cycle_loss(images, codec))
    assert last < first
    assert all(p.grad is None for p in codec.parameters())  # the codec stays frozen


def test_checkpoint_round_trip_and_use(tmp_path, tiny_parts, images):
    torch.manual_seed(1)
    adapter = EuclidHSCAdapter()
    path = save_adapter(adapter, tmp_path / "a.pt", {"note": "test"})
    loaded, meta, sha = load_adapter(path)
    assert meta == {"note": "test"} and len(sha) == 64
    with torch.no_grad():
        torch.testing.assert_close(loaded.euclid_to_hsc(images), adapter.euclid_to_hsc(images))
    comps = Components(*tiny_parts, WeightsInfo(kind="random", seed=0), "tiny")
    m = AionModel(registry().model("aion"), comps, {"adapter": str(path)}, get_mapping("adapter"), loaded, sha)
    out = m.embed(next(ToyDataset(size=2).iter_batches(2)))
    assert np.isfinite(out["image"]).all() and m.settings()["adapter_sha256"] == sha
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not an fmb-aion adapter"):
        load_adapter(tmp_path / "bad.pt")


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
def test_retrain_command(toy, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "retrain",
            "aion",
            "--dataset",
            "toy:size=4",
            "--weights",
            "random",
            "--size",
            "tiny",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "adapter.pt").exists() and f"aion:adapter={out}" in res.output
    _, meta, _ = load_adapter(out)  # the run folder loads as the adapter
    assert meta["objects"] == 4 and meta["codec_weights"]["kind"] == "random" and meta["codec_size"] == "tiny"
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [0, 1]  # 3 training objects, batch 2: one step per epoch


def test_differentiable_latent_matches_the_codec(tiny_parts, images):
    from aion.modalities import HSCImage

    from fmb_aion.adapter import codec_latent
    from fmb_aion.bands import HSC_BANDS, NMGY_TO_HSC

    hsc = torch.cat([images, images[:, :1]], 1) * NMGY_TO_HSC
    with torch.no_grad():
        ref = tiny_parts[1]._encode(HSCImage(flux=hsc.clone(), bands=list(HSC_BANDS)))
        torch.testing.assert_close(codec_latent(tiny_parts[1], hsc), ref)


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
def test_retrain_encoder_part_trains_the_transformer_and_records_provenance(toy, tmp_path):
    """--part encoder: cross-modal token prediction lowers its loss; the folder loads as --weights FOLDER and
    the run records where the weights came from (and that it scored the objects they were trained on)."""
    out = tmp_path / "enc"
    args = ["retrain", "aion", "--dataset", "toy:size=8", "--weights", "random", "--size", "tiny"]
    args += ["--part", "encoder", "--epochs", "3", "--batch-size", "3", "--lr", "3e-3", "--warmup-steps", "0"]
    res = CliRunner().invoke(cli, [*args, "--patience", "0", "--output", str(out), "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["best_val_loss"] < summary["initial_val_loss"]
    from fmb_aion.weights import folder_sha256

    assert summary["weights_file"] == "." and summary["sha256"] == folder_sha256(out)
    model = registry().load_model("aion", weights=str(out), options={"size": "tiny"})
    prov = model.weights.retrained
    assert prov["sha256"] == model.weights.sha256 and prov["dataset_spec"] == "toy:size=8" and prov["steps"] == 6
    base = registry().load_model("aion", weights="random", options={"size": "tiny"})
    changed = [k for k, v in model.aion.state_dict().items() if not torch.equal(v, base.aion.state_dict()[k])]
    assert changed  # the transformer learned ...
    for a, b in ((model.image_codec, base.image_codec), (model.spectrum_codec, base.spectrum_codec)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())  # ... the codecs did not


def test_hidden_mask_hides_exactly_the_fraction_per_row_reproducibly():
    from fmb_aion.retrain import hidden_mask

    m = hidden_mask(50, 273, 0.5, torch.Generator().manual_seed(3))
    assert m.dtype == torch.bool and m.shape == (50, 273)
    assert (m.sum(1) == 136).all()  # round(273 * 0.5) = 136 in every row
    assert torch.equal(m, hidden_mask(50, 273, 0.5, torch.Generator().manual_seed(3)))  # seeded: the same
    assert len({tuple(r.tolist()) for r in m}) == 50  # each row its own subset
    # every position is hidden about half the time (binomial(50, 0.498), sd 0.07): a mask biased to some
    # positions (say always the first half) would leave a position far outside [0.2, 0.8]
    freq = m.float().mean(0)
    assert 0.2 < freq.min() and freq.max() < 0.8
    # never all hidden, never none (the encoder needs one visible token, the loss one hidden)
    assert (hidden_mask(4, 10, 0.0).sum(1) == 1).all() and (hidden_mask(4, 10, 1.0).sum(1) == 9).all()


def test_retrain_encoder_refuses_an_unknown_objective(toy, tmp_path):
    args = ["retrain", "aion", "--dataset", "toy:size=8", "--weights", "random", "--size", "tiny", "--part"]
    res = CliRunner().invoke(cli, [*args, "encoder", "--objective", "masked", "--output", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and "objective 'masked' is not cross or cross+masked" in res.output, res.output
