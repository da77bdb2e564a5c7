"""fmb-astropt against FMB's conformance kit. The kit checks the spec's 768-d outputs, so it runs the
095M shape (random weights: ``auto`` with an empty, offline hub cache) on 32-pixel images (4 tokens)."""

import pytest

from fmb.testing.conformance import parametrize


@pytest.fixture(autouse=True)
def _offline_empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


ROUNDTRIP = "a 095M ckpt.pt is 380 MB: the round trip is tested on 001M in test_checkpoint.py"


@pytest.mark.filterwarnings("ignore:WARNING. astropt --weights auto found no weights")
@parametrize("model", "astropt", size="095M", image_size=32, skip={"weights_roundtrip": ROUNDTRIP})
def test_conformance(fmb_check):
    fmb_check()
