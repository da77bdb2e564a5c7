"""fmb-aion against FMB's conformance kit, on the tiny random configuration (``size=tiny``).

The kit's ``outputs`` check compares widths with the spec's 768 (the base size); tiny is 64-d,
so that one check is replaced by test_model.py::test_outputs_and_settings.
"""

import pytest

from fmb.testing.conformance import parametrize


@pytest.fixture(autouse=True)
def _offline_empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
@parametrize(
    "model",
    "aion",
    skip={"outputs": "size=tiny is 64-d, the spec declares base's 768 (see test_model.py)"},
    size="tiny",
)
def test_conformance(fmb_check):
    fmb_check()
