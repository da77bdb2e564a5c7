"""A small made-up survey table in the layout users bring (one Parquet/Arrow row per object).

Tests build the inputs of user-reported faults from it (no binary fixtures): ``object_id`` (int64),
``image`` [4, size, size] nested lists, ``flux``/``error`` [npix] (grid: ``wavelength_start=3600``,
``wavelength_step=0.8`` Angstrom), ``is_anomaly``, ``anomaly_class`` ("blob" or "normal"), ``redshift``.
Anomalies carry a bright 5x5 corner blob in every band and a +20 flux bump at pixels 200-209.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: the ``parquet`` dataset options that read :func:`survey_table` files
GRID_OPTIONS = "wavelength_start=3600,wavelength_step=0.8"


def survey_table(n: int = 200, seed: int = 0, n_anom: int = 10, size: int = 32, npix: int = 512) -> pa.Table:
    """``n`` objects, ``n_anom`` of them anomalous (chosen by ``seed``); ids 1000 .. 1000 + n - 1."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    amp = r.uniform(0.5, 2, (n, 1, 1, 1))
    width = r.uniform(2, 4, (n, 1, 1, 1))
    img = amp * np.exp(-(xx**2 + yy**2) / (2 * width**2))
    img = np.repeat(img, 4, 1) + r.normal(0, 0.01, (n, 4, size, size))
    flux = r.uniform(1, 3, (n, 1)) + r.normal(0, 0.05, (n, npix))
    anom = np.zeros(n, bool)
    anom[r.choice(n, n_anom, replace=False)] = True
    img[anom, :, 3:8, 3:8] += 5
    flux[anom, 200:210] += 20
    f32 = pa.list_(pa.float32())
    return pa.table(
        {
            "object_id": pa.array(np.arange(1000, 1000 + n)),
            "image": pa.array(img.astype(np.float32).tolist(), pa.list_(pa.list_(f32))),
            "flux": pa.array(flux.astype(np.float32).tolist(), f32),
            "error": pa.array(np.full((n, npix), 0.05, np.float32).tolist(), f32),
            "is_anomaly": pa.array(anom),
            "anomaly_class": pa.array(np.where(anom, "blob", "normal").tolist()),
            "redshift": pa.array(r.uniform(0.05, 0.8, n).astype(np.float32)),
        }
    )


def write_table(table: pa.Table, path: str | Path) -> str:
    """Write ``table`` as Parquet and return the ``parquet`` dataset spec that reads it."""
    pq.write_table(table, path)
    return f"parquet:path={path},{GRID_OPTIONS}"
