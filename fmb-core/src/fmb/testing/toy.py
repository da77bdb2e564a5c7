"""A tiny, seeded canonical data set (small images and spectra with planted anomalies).

Not a survey simulation: just enough structure that a working detector ranks the planted
``blob`` (image) and ``spike`` (spectrum) anomalies on top. Generated in memory; instant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.errors import DataError
from fmb.testing.toy_plugin import toy_dataset_plugin  # noqa: F401 - its public path

BANDS = ["VIS", "Y", "J", "H"]


class ToyDataset(Dataset):
    """``size`` objects of 4 x ``stamp`` x ``stamp`` images and ``npix``-pixel spectra."""

    name = "toy"

    def __init__(
        self, size: int = 64, seed: int = 0, stamp: int = 16, npix: int = 256, anomaly_rate: float = 0.1
    ) -> None:
        super().__init__()
        self.size, self.seed, self.stamp, self.npix = int(size), int(seed), int(stamp), int(npix)
        self.anomaly_rate = float(anomaly_rate)
        if self.size < 2 or self.stamp < 1 or self.npix < 2 or not 0 <= self.anomaly_rate <= 1:
            raise DataError(f"toy dataset: bad options {self.options()} (size >= 2, 0 <= anomaly_rate <= 1)")
        self._table = self._generate()

    def options(self) -> dict:
        return {
            "size": self.size,
            "seed": self.seed,
            "stamp": self.stamp,
            "npix": self.npix,
            "anomaly_rate": self.anomaly_rate,
        }

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.options().items())).encode()).hexdigest()

    def __len__(self) -> int:
        return self.size

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def _generate(self) -> pa.Table:
        rng = np.random.default_rng(self.seed)
        n, s, L = self.size, self.stamp, self.npix
        yy, xx = np.mgrid[:s, :s] - (s - 1) / 2
        size = rng.uniform(1.5, 3.0, n)[:, None, None]
        galaxy = np.exp(-(xx**2 + yy**2)[None] / (2 * size**2))
        colour = np.array([1.0, 1.3, 1.5, 1.6])
        images = galaxy[:, None] * colour[None, :, None, None] + rng.normal(0, 0.02, (n, 4, s, s))
        wave = np.linspace(0, 1, L)
        slope = rng.normal(0, 0.3, n)[:, None]
        flux = 1 + slope * wave[None] + rng.normal(0, 0.05, (n, L))
        n_anom = int(round(n * self.anomaly_rate))
        cls = np.array([C.NORMAL_CLASS] * n, dtype=object)
        idx = rng.permutation(n)[:n_anom]
        for j, i in enumerate(idx):
            if j % 2 == 0:
                cls[i] = "blob"
                images[i, :, : s // 3, : s // 3] += 2.0
            else:
                cls[i] = "spike"
                flux[i, L // 2 - 4 : L // 2 + 4] += 4.0
        fields = [
            pa.field(C.OBJECT_ID, pa.int64()),
            C.image_field(BANDS, s, s, 0.1),
            *C.spectrum_fields(L, 3600.0, 0.8),
            *C.truth_fields(),
        ]
        arrays = [
            pa.array(np.arange(n, dtype=np.int64)),
            pa.FixedSizeListArray.from_arrays(pa.array(images.astype(np.float32).ravel()), 4 * s * s),
            pa.FixedSizeListArray.from_arrays(pa.array(flux.astype(np.float32).ravel()), L),
            pa.FixedSizeListArray.from_arrays(pa.array(np.full(n * L, 100.0, np.float32)), L),
            pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * L, bool)), L),
            pa.array(cls != C.NORMAL_CLASS),
            pa.array(cls.astype(str)),
            pa.array(rng.uniform(0.05, 1.0, n).astype(np.float32)),
            pa.array(rng.normal(10.5, 0.5, n).astype(np.float32)),
            pa.array(rng.normal(0.0, 0.7, n).astype(np.float32)),
        ]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def iter_batches(self, batch_size: int = 256, start: int = 0, stop: int | None = None) -> Iterator[pa.RecordBatch]:
        stop = self.size if stop is None else min(stop, self.size)
        for lo in range(start, stop, batch_size):
            yield from self._table.slice(lo, min(batch_size, stop - lo)).to_batches()


def open_toy_dataset(**options: object) -> ToyDataset:
    """Loader for the ``toy`` dataset spec."""
    return ToyDataset(**options)  # type: ignore[arg-type]
