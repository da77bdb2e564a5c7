"""Built-in detectors: pyod's tabular detectors through one adapter."""

from __future__ import annotations

from fmb import __version__, hookimpl
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.specs import DetectorSpec


@hookimpl
def register_detectors(register):
    for name, (path, description, params) in PYOD_DETECTORS.items():
        register(DetectorSpec(
            name=name, description=f"{description} (pyod {path.rsplit('.', 1)[-1]}, standardised input)",
            loader=f"fmb.detectors.pyod_adapter:make_{name}", version=__version__,
            license="BSD-2-Clause (pyod)",
            citation="Zhao, Nasrullah & Li (2019), PyOD: A Python Toolbox for Scalable Outlier Detection, JMLR",
            params=params))
