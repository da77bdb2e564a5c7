"""fmb-aion registers its model through the entry point and fails honestly when run."""

import pytest

from fmb.errors import ModelError
from fmb.plugins import registry


def test_registered_through_entry_point():
    spec = registry().model("aion")
    assert spec.source.startswith("fmb-aion")
    assert spec.license == "MIT"
    assert set(spec.outputs) == {"image", "spectrum", "joint"}


def test_running_says_not_implemented():
    spec = registry().model("aion")
    with pytest.raises(ModelError, match="not implemented yet"):
        spec.load()(spec)
