"""The embed stage runs AstroCLIP through prepare (in the loader) + embed_prepared: same bytes as embed."""

import numpy as np
import pytest

from fmb.plugins import registry
from fmb.protocol.embed import embed_dataset
from fmb.testing.toy import ToyDataset


@pytest.mark.parametrize("workers", [0, 2])
def test_embed_stage_gives_the_bytes_of_model_embed(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("FMB_HOME", str(tmp_path))
    ds = ToyDataset(size=10, stamp=32, npix=7781)
    model = registry().load_model("astroclip", weights="random", options={"size": "small"})
    res = embed_dataset(model, ds, batch_size=4, workers=workers)
    direct = [model.embed(b) for b in ds.iter_batches(4)]
    for out in ("image", "spectrum", "joint"):
        want = np.concatenate([d[out] for d in direct])
        assert np.array_equal(res.matrix(out), want, equal_nan=True)
