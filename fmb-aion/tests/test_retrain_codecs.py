"""``fmb retrain aion --part codecs``: AION's tokenizers trained on reconstruction, then the transformer on their
tokens; the noise estimate the image loss is weighted by."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fmb.cli import cli
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset

pytestmark = pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")

BASE = ["retrain", "aion", "--dataset", "toy:size=8", "--size", "tiny", "--batch-size", "4", "--warmup-steps", "0"]


def retrain(out, *args):
    res = CliRunner().invoke(cli, [*BASE, *args, "--patience", "0", "--output", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "retrain.json").read_text())


def tokens(model, n=4):
    """Image and spectrum tokens of the first ``n`` toy objects through ``model``'s codecs."""
    from fmb_aion.preprocess import spectra_from_batch

    batch = next(ToyDataset(size=n).iter_batches(n))
    flux, bands, mapping, valid = model.codec_inputs(batch)
    sp = spectra_from_batch(batch)
    rows = np.flatnonzero(valid & sp.valid)
    with torch.inference_mode():
        return model._image_tokens(flux[torch.from_numpy(rows)], bands, mapping), model._spectrum_tokens(sp, rows)


def test_codecs_part_lowers_reconstruction_loss_changes_tokens_and_chains_into_the_encoder(toy, tmp_path):
    """The codecs' reconstruction loss falls on a seeded toy set; the folder loads as --weights FOLDER with its
    provenance, its tokens differ from the random codecs' while the transformer is untouched; the same seed gives
    the same bytes; --part encoder started from it records the codec stage as its starting weights."""
    from fmb_aion.weights import folder_sha256

    args = ["--weights", "random", "--seed", "3", "--part", "codecs", "--epochs", "3", "--lr", "3e-3"]
    summary = retrain(tmp_path / "codecs", *args)
    assert summary["best_val_loss"] < summary["initial_val_loss"]  # reconstruction (image NLL + spectrum chi2) fell
    history = json.loads((tmp_path / "codecs" / "history.json").read_text())
    for part in ("val_image", "val_spectrum"):  # each codec learns (a few steps: not necessarily monotone)
        assert min(row[part] for row in history[1:]) < history[0][part]
    assert summary["weights_file"] == "." and summary["sha256"] == folder_sha256(tmp_path / "codecs")
    assert retrain(tmp_path / "again", *args)["sha256"] == summary["sha256"]  # seeded: the same bytes

    model = registry().load_model("aion", weights=str(tmp_path / "codecs"), options={"size": "tiny"}, seed=3)
    base = registry().load_model("aion", weights="random", options={"size": "tiny"}, seed=3)
    prov = model.weights.retrained
    assert model.weights.kind == "path" and prov["sha256"] == model.weights.sha256
    assert prov["steps"] == summary["steps_run"] > 0
    assert all(torch.equal(v, base.aion.state_dict()[k]) for k, v in model.aion.state_dict().items())
    new, old = tokens(model), tokens(base)
    assert not torch.equal(new[0], old[0]) and not torch.equal(new[1], old[1])  # both codecs tokenise anew

    codecs = str(tmp_path / "codecs")
    enc = retrain(tmp_path / "enc", "--weights", codecs, "--seed", "3", "--part", "encoder", "--epochs", "1")
    assert enc["weights"]["kind"] == "path" and enc["weights"]["sha256"] == summary["sha256"]
    assert enc["weights"]["retrained"]["sha256"] == summary["sha256"]  # the codec stage's provenance goes along


def test_an_unknown_part_is_refused_in_one_line_naming_the_option(toy, tmp_path):
    out = str(tmp_path / "o")
    res = CliRunner().invoke(cli, [*BASE, "--weights", "random", "--part", "tokenizer", "--output", out])
    assert res.exit_code == 2, res.output
    (line,) = [x for x in res.output.splitlines() if "tokenizer" in x]
    assert "--part 'tokenizer' is not one of adapter, encoder, codecs" in line


def test_image_noise_recovers_the_sky_noise_of_padded_stamps_with_sources():
    from fmb_aion.retrain import image_noise

    rng = np.random.default_rng(0)
    img = np.zeros((3, 2, 40, 40), np.float32)  # zero padding around a 24 x 24 observed region
    sig = np.array([[0.5, 2.0], [0.1, 1.0], [0.3, 0.3]], np.float32)
    img[:, :, 8:32, 8:32] = rng.normal(size=(3, 2, 24, 24)) * sig[:, :, None, None]
    yy, xx = np.mgrid[:24, :24]
    img[:, :, 8:32, 8:32] += 50 * np.exp(-((yy - 12) ** 2 + (xx - 12) ** 2) / 4.0)  # a compact bright source
    est = image_noise(img)
    np.testing.assert_allclose(est, sig, rtol=0.15)  # 576 pixels, ~250 negative: a few % error
    blank = image_noise(np.concatenate([img, np.zeros((1, 2, 40, 40), np.float32)]))
    # a stamp with no negative pixel gets its band's median noise, never 0
    np.testing.assert_allclose(blank[3], np.median(est, axis=0), rtol=1e-6)


def test_saving_the_same_weights_gives_the_same_bytes(tiny_parts, tmp_path):
    """safetensors writes its metadata (the tied tensors) in a random order per save: save_folder sorts the
    header, so the provenance hash of identical weights is identical (and the weights load unchanged)."""
    from fmb_aion.weights import folder_sha256, load_folder, save_folder

    hashes = {folder_sha256(save_folder(tmp_path / f"s{i}", *tiny_parts)) for i in range(4)}
    assert len(hashes) == 1
    model, image_codec, _ = load_folder(tmp_path / "s0")
    for a, b in ((model, tiny_parts[0]), (image_codec, tiny_parts[1])):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
