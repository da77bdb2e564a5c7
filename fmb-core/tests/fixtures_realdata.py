"""Builders of look-alikes of the real Euclid x DESI Hugging Face data set (for the loader tests).

``lookalike_columns`` makes the raw values; ``hf_dataset`` wraps them in a ``datasets.Dataset``
with EXACTLY the real Features (needs ``datasets``); ``lookalike_table`` builds the same layout
with pyarrow alone (Array2D -> list<list<float>>, Image -> struct<bytes, path>), for tests that
corrupt the data.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image as PILImage

NPIX = 7781
WAVE = (3600.0 + 0.8 * np.arange(NPIX)).astype(np.float32)
BAND_COLUMNS = ("VIS_image", "NISP_Y_image", "NISP_J_image", "NISP_H_image")
REPO = "msiudek/astroPT_euclid_Q1_desi_dr1_dataset"


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def lookalike_columns(n: int = 6, h: int = 32, seed: int = 0, npix: int = NPIX, id_offset: int = 0) -> dict:
    """Raw per-row values in the real schema's column names (numpy arrays / lists)."""
    rng = np.random.default_rng(seed)
    bands = rng.normal(0.0, 1.0, (n, 4, h, h)).astype(np.float32) + 5.0
    rgb = rng.integers(0, 255, (n, h, h, 3), dtype=np.uint8)
    flux = rng.normal(1.0, 0.1, (n, npix)).astype(np.float32)
    error = np.full((n, npix), 0.1, np.float32)
    wave = WAVE if npix == NPIX else (3600.0 + 0.8 * np.arange(npix)).astype(np.float32)
    types = ["none", "ring", "none", "blue_blob", "none", "none"] * (n // 6 + 1)
    return {
        "object_id": [-600000000000000000 - i - id_offset for i in range(n)],
        "targetid": [39633000000000000 + i + id_offset for i in range(n)],
        "redshift": rng.uniform(0.1, 1.0, n).astype(np.float32).tolist(),
        "RGB_image": rgb,
        **{c: bands[:, b] for b, c in enumerate(BAND_COLUMNS)},
        "spectrum": {"wavelength": np.tile(wave, (n, 1)), "flux": flux, "error": error},
        "sed_data": {
            k: rng.uniform(1, 10, n).astype(np.float32).tolist() for k in ("flux_vis", "flux_y", "flux_j", "flux_h")
        },
        "is_anomaly": [t != "none" for t in types[:n]],
        "anomaly_type": types[:n],
    }


def hf_features(h: int = 32):
    """The real data set's Features (plus the benchmark-only label columns)."""
    from datasets import Array2D, Features, Image, Sequence, Value

    return Features(
        {
            "object_id": Value("int64"),
            "targetid": Value("int64"),
            "redshift": Value("float32"),
            "RGB_image": Image(),
            **{c: Array2D((h, h), "float32") for c in BAND_COLUMNS},
            "spectrum": {
                "wavelength": Sequence(Value("float32")),
                "flux": Sequence(Value("float32")),
                "error": Sequence(Value("float32")),
            },
            "sed_data": {k: Value("float32") for k in ("flux_vis", "flux_y", "flux_j", "flux_h")},
            "is_anomaly": Value("bool"),
            "anomaly_type": Value("string"),
        }
    )


def hf_dataset(n: int = 6, h: int = 32, seed: int = 0, **kw):
    """A ``datasets.Dataset`` in exactly the real schema."""
    from datasets import Dataset

    c = lookalike_columns(n, h, seed, **kw)
    rows = dict(c)
    rows["RGB_image"] = [PILImage.fromarray(im) for im in c["RGB_image"]]
    for b in BAND_COLUMNS:
        rows[b] = list(c[b])
    s = c["spectrum"]
    rows["spectrum"] = [{k: s[k][i] for k in ("wavelength", "flux", "error")} for i in range(n)]
    rows["sed_data"] = [{k: v[i] for k, v in c["sed_data"].items()} for i in range(n)]
    return Dataset.from_dict(rows, features=hf_features(h))


def save_disk(root: Path, split: str = "test", **kw) -> Path:
    """``save_to_disk`` folder as upstream FMB names it: ``<root>/<repo>__<split>``."""
    folder = Path(root) / f"{REPO.replace('/', '__')}__{split}"
    hf_dataset(**kw).save_to_disk(str(folder))
    return folder


def save_parquet(path: Path, **kw) -> Path:
    """``Dataset.to_parquet`` of the look-alike."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    hf_dataset(**kw).to_parquet(str(path))
    return Path(path)


def _list2d(a: np.ndarray) -> pa.Array:
    n, h, w = a.shape
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, n * h * w + 1, w, dtype=np.int32)), pa.array(a.reshape(-1)))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * h + 1, h, dtype=np.int32)), inner)


def _lists(rows: list[np.ndarray]) -> pa.Array:
    return pa.array([np.asarray(r, np.float32) for r in rows], pa.list_(pa.float32()))


def lookalike_table(n: int = 6, h: int = 32, seed: int = 0, columns: dict | None = None, **kw) -> pa.Table:
    """The real layout built with pyarrow alone; ``columns`` overrides raw values first."""
    c = lookalike_columns(n, h, seed, **kw)
    c.update(columns or {})
    s = c["spectrum"]
    spectrum = pa.StructArray.from_arrays(
        [_lists(list(s[k])) for k in ("wavelength", "flux", "error")], names=["wavelength", "flux", "error"]
    )
    rgb = pa.StructArray.from_arrays(
        [pa.array([png_bytes(im) for im in c["RGB_image"]], pa.binary()), pa.nulls(n, pa.string())],
        names=["bytes", "path"],
    )
    cols = {
        "object_id": pa.array(c["object_id"]),
        "targetid": pa.array(c["targetid"], pa.int64()),
        "redshift": pa.array(c["redshift"], pa.float32()),
        "RGB_image": rgb,
        **{
            b: (_list2d(np.asarray(c[b], np.float32)) if not isinstance(c[b], pa.Array) else c[b]) for b in BAND_COLUMNS
        },
        "spectrum": spectrum,
        "sed_data": pa.StructArray.from_arrays(
            [pa.array(v, pa.float32()) for v in c["sed_data"].values()], names=list(c["sed_data"])
        ),
        "is_anomaly": pa.array(c["is_anomaly"]),
        "anomaly_type": pa.array(c["anomaly_type"]),
    }
    return pa.table(cols)


def write_parquet(table: pa.Table, path: Path, row_group_size: int | None = None) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path), row_group_size=row_group_size)
    return Path(path)
