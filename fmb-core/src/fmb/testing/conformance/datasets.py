"""Dataset conformance: :class:`DatasetHarness` opens a registered dataset once and runs the dataset checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.testing.conformance.common import (
    CheckSkipped,
    Harness,
    _registry,
    _spec,
)


@dataclass
class DatasetHarness(Harness):
    """Opens a registered dataset once and runs the dataset checks on it."""

    kind = "dataset"

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    max_rows: int = 256
    _ds: Any = None

    @property
    def spec(self) -> Any:
        return _spec("dataset", self.name)

    def open(self) -> Any:
        from fmb.datasets.base import Dataset

        _ = self.spec  # an unknown name is an AssertionError naming it
        ds = _registry().load_dataset(self.name, self.options)
        assert isinstance(ds, Dataset), f"dataset {self.name!r}: loader returned {type(ds).__name__}, not a Dataset"
        return ds

    @property
    def ds(self) -> Any:
        if self._ds is None:
            self._ds = self.open()
        return self._ds

    @property
    def rows(self) -> int:
        return min(len(self.ds), self.max_rows)

    def table(self, batch_size: int = 64, start: int = 0, stop: int | None = None) -> pa.Table:
        batches = list(self.ds.iter_batches(batch_size=batch_size, start=start, stop=stop))
        for b in batches:
            assert isinstance(b, pa.RecordBatch), f"dataset {self.name!r}: yielded {type(b).__name__}"
        return pa.Table.from_batches(batches, schema=self.ds.schema)

    def check_schema(self) -> None:
        ds, spec, where = self.ds, self.spec, f"dataset {self.name!r}"
        schema = ds.schema
        assert len(ds) > 0, f"{where}: no objects"
        assert C.OBJECT_ID in schema.names, f"{where}: no {C.OBJECT_ID!r} column"
        idt = schema.field(C.OBJECT_ID).type
        assert pa.types.is_integer(idt) or pa.types.is_string(idt) or pa.types.is_large_string(idt), (
            f"{where}: object_id has type {idt}, expected an integer or a string"
        )
        missing = set(spec.modalities) - set(ds.modalities)
        assert not missing, f"{where}: spec declares modalities {sorted(missing)} that the schema lacks"
        if C.IMAGE in schema.names:
            fld = schema.field(C.IMAGE)
            assert pa.types.is_fixed_size_list(fld.type) and fld.type.value_type == pa.float32(), (
                f"{where}: image must be a fixed_size_list of float32, got {fld.type}"
            )
            shape = C.field_shape(fld)
            assert len(shape) == 3 and int(np.prod(shape)) == fld.type.list_size, (
                f"{where}: image shape metadata {shape} does not match the list size {fld.type.list_size}"
            )
            bands = C.image_bands(schema)
            assert len(bands) == shape[0] and all(bands), f"{where}: bands metadata {bands} vs shape {shape}"
            assert C.field_meta(fld, "pixel_scale") is not None, f"{where}: image has no pixel_scale metadata"
        if C.FLUX in schema.names:
            sizes = {}
            for col, typ in ((C.FLUX, pa.float32()), (C.IVAR, pa.float32()), (C.MASK, pa.bool_())):
                assert col in schema.names, f"{where}: {col!r} column missing next to flux"
                t = schema.field(col).type
                assert pa.types.is_fixed_size_list(t) and t.value_type == typ, (
                    f"{where}: {col!r} must be a fixed_size_list of {typ}, got {t}"
                )
                sizes[col] = t.list_size
            assert len(set(sizes.values())) == 1, f"{where}: spectrum columns have different lengths {sizes}"
            grid = C.field_meta(schema.field(C.FLUX), "wavelength_start")
            assert grid is not None or C.WAVELENGTH in schema.names, f"{where}: spectrum has no wavelength grid"
        if spec.has_labels:
            assert C.has_labels(schema), f"{where}: spec says has_labels but there is no {C.IS_ANOMALY!r} column"
        expected = {C.IS_ANOMALY: pa.bool_(), C.ANOMALY_CLASS: pa.string(), **{p: pa.float32() for p in C.PHYSICAL}}
        for col, typ in expected.items():
            if col in schema.names:
                assert schema.field(col).type == typ, f"{where}: {col!r} has type {schema.field(col).type}, not {typ}"

    def check_batches(self) -> None:
        ds, where = self.ds, f"dataset {self.name!r}"
        for b in ds.iter_batches(batch_size=16, stop=self.rows):
            assert b.schema.equals(ds.schema), f"{where}: a batch's schema differs from Dataset.schema"
            for col in (C.IMAGE, C.FLUX):
                if col in b.schema.names:
                    C.column_array(b, col)  # raises on nulls or a shape mismatch
        ids = self.table(64, stop=None if len(ds) <= self.max_rows else self.rows).column(C.OBJECT_ID).to_pylist()
        if len(ds) <= self.max_rows:
            assert len(ids) == len(ds), f"{where}: iter_batches yields {len(ids)} rows but len() is {len(ds)}"
        assert None not in ids, f"{where}: null object_id"
        assert len(set(ids)) == len(ids), f"{where}: object_id values are not unique"

    def check_slicing(self) -> None:
        where, n = f"dataset {self.name!r}", self.rows
        full = self.table(64, stop=n)
        ids = full.column(C.OBJECT_ID).to_pylist()
        assert len(ids) == n, f"{where}: stop={n} gives {len(ids)} rows"
        for size in (1, 7):
            stop = min(n, 3 * size + 1)
            got = [b.num_rows for b in self.ds.iter_batches(batch_size=size, stop=stop)]
            assert all(0 < k <= size for k in got), f"{where}: batch_size={size} gives batches of {got} rows"
            assert sum(got) == stop, f"{where}: batch_size={size} loses or adds rows"
            diff = first_difference(self.table(size, stop=stop), full.slice(0, stop))
            assert diff is None, (
                f"{where}: rows read in batches of {size} differ from the same rows read in "
                f"batches of 64 ({diff}); a row's values must not depend on how it is batched"
            )
        lo, hi = n // 4, max(n // 4 + 1, 3 * n // 4)
        part_table = self.table(5, start=lo, stop=hi)
        part = part_table.column(C.OBJECT_ID).to_pylist()
        assert part == ids[lo:hi], f"{where}: iter_batches(start={lo}, stop={hi}) does not give rows {lo}..{hi - 1}"
        diff = first_difference(part_table, full.slice(lo, hi - lo))
        assert diff is None, (
            f"{where}: iter_batches(start={lo}, stop={hi}) gives the right ids but other values "
            f"than rows {lo}..{hi - 1} read from the start ({diff}, row counted from {lo})"
        )
        assert self.table(8, start=lo, stop=lo).num_rows == 0, f"{where}: start == stop must yield no rows"
        tail = self.table(8, start=len(self.ds) - 1, stop=len(self.ds) + 10).num_rows
        assert tail == 1, f"{where}: a stop past the end must be clipped (got {tail} rows for the last one)"

    def check_deterministic(self) -> None:
        where, n = f"dataset {self.name!r}", min(self.rows, 32)
        a, b = self.table(16, stop=n), self.table(16, stop=n)
        assert a.equals(b), f"{where}: iterating twice gives different data"
        fp = self.ds.fingerprint
        assert isinstance(fp, str) and fp and all(c in "0123456789abcdef" for c in fp.lower()), (
            f"{where}: fingerprint {fp!r} is not a hex string"
        )
        again = self.open()
        assert again.fingerprint == fp, f"{where}: fingerprint changes when opened again with the same options"
        assert self.table(16, stop=n).equals(
            pa.Table.from_batches(list(again.iter_batches(16, stop=n)), schema=again.schema)
        ), f"{where}: opening again with the same options gives different data"

    def _sample(self, ds: Any) -> tuple[int, pa.Table]:
        n = min(len(ds), 32)
        return len(ds), pa.Table.from_batches(list(ds.iter_batches(16, stop=n)), schema=ds.schema)

    def check_fingerprint_options(self) -> None:
        """Each option given, varied: where the data change, the fingerprint changes too."""
        where, fp = f"dataset {self.name!r}", self.ds.fingerprint
        base = self._sample(self.ds)
        tried = []
        for key, value in sorted(self.options.items()):
            for new in _variants(value):
                try:
                    other = _registry().load_dataset(self.name, {**self.options, key: new})
                except Exception:  # an invalid variant says nothing about the fingerprint
                    continue
                size, table = self._sample(other)
                if size == base[0] and table.schema.equals(base[1].schema) and first_difference(table, base[1]) is None:
                    continue  # same data: the fingerprint may stay
                tried.append(key)
                assert other.fingerprint != fp, (
                    f"{where}: options {key}={value!r} and {key}={new!r} give different data but the same fingerprint "
                    f"{fp[:12]}...; the fingerprint must cover every option that changes the data (the embedding "
                    f"cache would reuse the wrong embeddings)"
                )
                break
        if not tried:
            raise CheckSkipped(
                f"{where}: no option given changes the data when varied (pass the options a user "
                f"sets, e.g. check_dataset({self.name!r}, size=64, seed=0))"
            )

    def check_labels(self) -> None:
        if not self.ds.has_labels:
            raise CheckSkipped(f"dataset {self.name!r} has no labels")
        t, where = self.table(64, stop=self.rows), f"dataset {self.name!r}"
        assert t.column(C.IS_ANOMALY).null_count == 0, f"{where}: is_anomaly has nulls"
        if C.ANOMALY_CLASS in t.column_names:
            flags = np.asarray(t.column(C.IS_ANOMALY).to_pylist(), bool)
            normal = np.asarray([c == C.NORMAL_CLASS for c in t.column(C.ANOMALY_CLASS).to_pylist()])
            assert (flags == ~normal).all(), (
                f"{where}: is_anomaly disagrees with anomaly_class ({C.NORMAL_CLASS!r} for normal objects) "
                f"in row {int(np.flatnonzero(flags == normal)[0])}"
            )


def _variants(value: Any) -> list[Any]:
    """Other values of an option of the same type, to vary it (strings and others: none)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 1.5 + 0.1, value / 2]
    return []


def first_difference(a: pa.Table, b: pa.Table, rtol: float = 1e-6, atol: float = 0.0) -> str | None:
    """Where tables ``a`` and ``b`` first differ in content ("column 'x', row i"), or None if they agree.

    Numeric (and fixed-size list of numeric) columns compare with ``numpy.allclose`` (NaN equal to NaN);
    other columns exactly.
    """
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    for col in a.column_names:
        if col not in b.column_names:
            return f"column {col!r} missing"
        x, y = a.column(col).combine_chunks(), b.column(col).combine_chunks()
        if pa.types.is_fixed_size_list(x.type) and x.null_count == 0 and y.null_count == 0:
            x, y = (np.asarray(v.flatten()).reshape(len(v), -1) for v in (x, y))
        elif pa.types.is_integer(x.type) or pa.types.is_floating(x.type):
            x, y = (np.asarray(v.to_numpy(zero_copy_only=False)).reshape(len(v), 1) for v in (x, y))
        else:
            xs, ys = x.to_pylist(), y.to_pylist()
            bad = [i for i, (p, q) in enumerate(zip(xs, ys)) if p != q]
            if bad:
                return f"column {col!r}, row {bad[0]}"
            continue
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number) and x.shape == y.shape:
            close = np.isclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
            rows = np.flatnonzero(~close.all(axis=1))
        else:
            rows = np.flatnonzero([not np.array_equal(p, q) for p, q in zip(x, y)]) if len(x) == len(y) else [0]
        if len(rows):
            return f"column {col!r}, row {int(rows[0])}"
    return None
