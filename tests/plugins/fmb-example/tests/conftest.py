"""Every test gets an empty FMB_HOME (the ``fmb_home`` fixture comes from fmb-core's pytest plugin)."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(fmb_home):
    return fmb_home
