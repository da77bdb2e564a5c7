"""fmb-astropt registers its model through the entry point and fails honestly when run."""

import pytest

from fmb.errors import ModelError
from fmb.plugins import registry


def test_registered_through_entry_point():
    spec = registry().model("astropt")
    assert spec.source.startswith("fmb-astropt")
    assert spec.license == "AGPL-3.0-or-later"
    assert set(spec.outputs) == {"image", "spectrum", "joint"}


def test_running_says_not_implemented():
    spec = registry().model("astropt")
    with pytest.raises(ModelError, match="not implemented yet"):
        spec.load()(spec)
