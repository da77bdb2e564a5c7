"""Small helpers shared by the fmb-astropt tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset

FAST = {"size": "001M", "image_size": 64}  # 16 image tokens: fast on two cores


def load(weights="random", **options):
    spec = registry().model("astropt")
    return registry().load_model(spec.name, weights=weights, options={**FAST, **options}, seed=0)


def toy_batch(n=8, **kw) -> pa.RecordBatch:
    return next(ToyDataset(size=n, **kw).iter_batches(n))


def replace_column(batch: pa.RecordBatch, name: str, values: np.ndarray) -> pa.RecordBatch:
    """``batch`` with column ``name`` replaced by ``values`` ``[N, ...]`` (same field and metadata)."""
    i = batch.schema.get_field_index(name)
    fld = batch.schema.field(i)
    flat = pa.array(np.ascontiguousarray(values).reshape(-1).astype(fld.type.value_type.to_pandas_dtype()))
    col = pa.FixedSizeListArray.from_arrays(flat, fld.type.list_size)
    return batch.set_column(i, fld, col)


def image_of(batch: pa.RecordBatch) -> np.ndarray:
    return C.column_array(batch, C.IMAGE).copy()
