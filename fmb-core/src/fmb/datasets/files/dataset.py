"""The ``parquet`` data set: canonical, validated batches from a user's Parquet/Arrow files.

:class:`FileDataset` (shared with ``euclid-desi``) probes the first rows to finish the :class:`Plan`
(image shape, spectrum length, wavelength grid), then streams converted and validated batches;
:func:`open_dataset` is the registered loader (``fmb.datasets.files:open_dataset``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.data.canonical import DataError, Repairs
from fmb.data.validate import check_unique_ids, validate_batch
from fmb.datasets.base import Dataset
from fmb.datasets.files.columns import (
    _has_path,
    _image_array,
    _object_ids,
    _rgb_array,
    canonical_schema,
    convert_batch,
    dataset_id_type,
    get_column,
    nested_to_numpy,
    shared_grid,
)
from fmb.datasets.files.mapping import (
    Plan,
    _flux_unit,
    _grid_metadata,
    _image_metadata,
    default_columns,
    parse_columns,
)
from fmb.datasets.files.sources import DEFAULT_BATCH_ROWS, SourceFile, limit_files, rechunk, resolve_files
from fmb.fingerprint import ALGORITHM, value_hash
from fmb.params import as_float, as_int, as_limit, as_list


class FileDataset(Dataset):
    """Canonical batches converted from Parquet/Arrow files according to a :class:`Plan`."""

    name = "parquet"

    def __init__(
        self,
        files: list[SourceFile],
        plan: Plan,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        kind: str = "files",
        options: dict | None = None,
    ) -> None:
        super().__init__()
        if not files:
            raise DataError("no data files")
        self._files, self._plan, self._batch_rows, self._kind = files, plan, max(int(batch_rows), 1), kind
        self._options = dict(options or {})
        self._starts = np.cumsum([0] + [f.num_rows for f in files])
        self._counted: set[tuple[int, int]] = set()
        for f in files:
            missing = [s for s in plan.sources() if not _has_path(f.schema, s)]
            if missing:
                raise DataError(f"{f.path}: missing column {missing[0]!r} (columns: {', '.join(f.schema.names)})")
        if len(self) == 0:
            raise DataError(f"{files[0].path}: empty (no rows)")
        self._schema = self._probe()

    # -- schema from the first block
    def _probe(self) -> pa.Schema:
        plan = self._plan
        f = next(f for f in self._files if f.num_rows)
        raw = next(iter(rechunk(f.read_range(0, min(f.num_rows, 16), plan.top_columns()), 16)))
        src = f.name
        plan.id_type = dataset_id_type(self._files, plan)
        ids = _object_ids(raw, plan, src).to_numpy(zero_copy_only=False)
        if plan.image:
            img = _image_array(raw, plan, src, 0, ids, f.path.parent)
            plan.image_shape = tuple(int(s) for s in img.shape[1:])
            if plan.image_bands and len(plan.image_bands) != plan.image_shape[0]:
                raise DataError(f"{src}: {len(plan.image_bands)} image_bands for {plan.image_shape[0]} bands")
            if plan.band_scale and len(plan.band_scale) != plan.image_shape[0]:
                raise DataError(f"{src}: {len(plan.band_scale)} band scales for {plan.image_shape[0]} bands")
        if plan.rgb:
            rgb = _rgb_array(raw, plan, src, 0, ids, f.path.parent)
            if rgb.ndim != 4 or rgb.shape[1] != 3:
                raise DataError(f"{src}: field 'rgb' ({plan.rgb!r}): expected 3-channel images, got {rgb.shape[1:]}")
            plan.rgb_shape = tuple(int(s) for s in rgb.shape[1:])
        if plan.flux:
            self._probe_spectrum()
        return canonical_schema(plan, bool(plan.image))

    def _first_spectra(self, rows: int = 16) -> tuple[pa.RecordBatch, str, int]:
        """Up to ``rows`` raw rows whose flux is not null, the first ones in the data set, with their
        file name and the file row of the first; a DataError when every flux is null."""
        plan = self._plan
        cols = sorted({s.partition(".")[0] for s in (*plan.object_id, plan.flux, plan.wavelength) if s})
        for f in self._files:
            pos, step = 0, rows
            while pos < f.num_rows:  # growing windows: read no further than the first spectra
                hi = min(pos + step, f.num_rows)
                raw = next(iter(rechunk(f.read_range(pos, hi, cols, hi - pos), hi - pos)))
                present = ~get_column(raw, plan.flux, f.name).is_null().to_numpy(zero_copy_only=False)
                if present.any():
                    keep = np.flatnonzero(present)[:rows]
                    return raw.take(pa.array(keep)), f.name, pos + int(keep[0])
                pos, step = hi, step * 4
        raise DataError(
            f"{self._files[0].name}: field 'flux' ({plan.flux!r}) is null in every row; "
            "map no flux column to read images only"
        )

    def _probe_spectrum(self) -> None:
        """Spectrum length and wavelength grid from the first non-null spectra (wherever they are)."""
        plan = self._plan
        if not (plan.ivar or plan.error):
            raise DataError(f"{self._files[0].name}: spectrum 'flux' ({plan.flux!r}) needs an 'ivar' or 'error' column")
        raw, src, row0 = self._first_spectra()
        ids = _object_ids(raw, plan, src).to_numpy(zero_copy_only=False)
        plan.npix = nested_to_numpy(get_column(raw, plan.flux, src), src, C.FLUX, row0, ids).shape[1]
        if plan.wavelength_start is not None and plan.wavelength_step is not None:
            per_row = plan.wavelength and plan.wavelength_mode == "column"
            plan.wavelength_mode = "column" if per_row else "grid"
            if not per_row:
                self._orient_grid(src)
            return
        if plan.wavelength and plan.wavelength_mode != "column":
            w = get_column(raw, plan.wavelength, src)
            w = w.filter(pa.array(~w.is_null().to_numpy(zero_copy_only=False)))
            wave = nested_to_numpy(w, src, C.WAVELENGTH, row0, None, np.float64) if len(w) else None
            grid = shared_grid(wave) if wave is not None else None
            if grid is None and wave is not None and (rev := shared_grid(wave[:, ::-1])):
                plan.reverse_spectra, grid = True, rev
            if grid:
                plan.wavelength_start, plan.wavelength_step = grid
                plan.wavelength_mode = "grid"
                return
            plan.wavelength_mode = "column"
            return
        if plan.wavelength:
            return
        if plan.npix == C.DESI_NPIX:
            plan.wavelength_start, plan.wavelength_step = C.DESI_WAVE_START, C.DESI_WAVE_STEP
            plan.wavelength_mode = "grid"
            return
        raise DataError(
            f"{src}: spectra of length {plan.npix} need a wavelength column or wavelength_start and wavelength_step"
        )

    def _orient_grid(self, src: str) -> None:
        """A shared grid given as start/step with a negative step runs red to blue: keep the ascending
        grid (start = the bluest pixel) and reverse every spectrum on reading (counted)."""
        plan = self._plan
        if not plan.wavelength_step or plan.wavelength_step != plan.wavelength_step:
            raise DataError(f"{src}: wavelength_step must be non-zero, got {plan.wavelength_step}")
        if plan.wavelength_step < 0:
            plan.wavelength_start = plan.wavelength_start + plan.wavelength_step * (plan.npix - 1)
            plan.wavelength_step = -plan.wavelength_step
            plan.reverse_spectra = True

    # -- Dataset interface
    #: options that do not change the data: left out of the fingerprint (so a moved copy matches)
    NOT_FINGERPRINTED = ("path", "files", "batch_rows", "cache_dir")

    @property
    def fingerprint(self) -> str:
        """Hash of the source kind, the shaping options and each file's full content, in row order.

        Any changed byte of any file changes it (the file digests are memoised by path, size,
        mtime and inode, so asking again is cheap); moving, renaming or copying the files does not.
        """
        opts = {k: v for k, v in self.options().items() if k not in self.NOT_FINGERPRINTED}
        return value_hash(
            {
                "kind": self._kind,
                "name": self.name,
                "options": opts,
                "files": [f.content_hash() for f in self._files],
                "hash": ALGORITHM,
            }
        )

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def options(self) -> dict:
        opts = dict(self._options)
        opts.setdefault("plan", self._plan.to_options())
        opts["files"] = [str(f.path) for f in self._files]
        return opts

    def iter_batches(self, batch_size: int = 256, start: int = 0, stop: int | None = None) -> Iterator[pa.RecordBatch]:
        """Validated canonical batches of rows ``[start, stop)``; the first call checks that every id of the
        whole data set is unique (once per data set, :func:`fmb.data.validate.check_unique_ids`)."""
        check_unique_ids(self)
        n = len(self)
        stop = n if stop is None else min(int(stop), n)
        start = max(int(start), 0)
        if start >= stop:
            return
        yield from rechunk(self._pieces(start, stop), max(int(batch_size), 1))

    def locate(self, row: int) -> tuple[str, int]:
        """``(file name, row in that file)`` of data set row ``row``."""
        fi = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self._files[fi].name, int(row - self._starts[fi])

    def read_columns(self, columns: list[str]) -> pa.Table:
        """Ids and labels for every object, reading only their source columns (no images/spectra).

        Duplicate ids are not checked here (see :func:`fmb.data.validate.check_unique_ids`).
        """
        light = {C.OBJECT_ID, *C.LABEL_COLUMNS}
        if not set(columns) <= light:
            return super().read_columns(columns)
        plan = dataclasses.replace(
            self._plan,
            image=[],
            rgb=None,
            flux=None,
            ivar=None,
            error=None,
            mask=None,
            wavelength=None,
            rgb_shape=None,
            labels={k: v for k, v in self._plan.labels.items() if k in columns},
        )
        schema = canonical_schema(plan, has_image=False)
        out = []
        for f in self._files:
            pos = 0
            for raw in f.read_range(0, f.num_rows, plan.top_columns(), 65536):
                canon = convert_batch(raw, plan, schema, f.name, pos, Repairs(), f.path.parent)
                out.append(validate_batch(canon, f.name, pos, Repairs(), duplicates=False))
                pos += raw.num_rows
        table = pa.Table.from_batches(out, schema=schema)
        return table.select([c for c in columns if c in schema.names])

    def _pieces(self, start: int, stop: int) -> Iterator[pa.RecordBatch]:
        """Validated canonical pieces for ``[start, stop)``, read in blocks aligned to batch_rows.

        Aligned blocks make the repair counts independent of how the rows are requested:
        each block's repairs are counted once per dataset object. A block that fails validation
        only fails the request when a requested row is at fault (so ``fmb show`` of one object is
        not refused for a bad neighbour); the block's repairs are then not counted.
        """
        r = self._batch_rows
        for fi, f in enumerate(self._files):
            g0 = int(self._starts[fi])
            lo, hi = max(start - g0, 0), min(stop - g0, f.num_rows)
            if lo >= hi:
                continue
            b_lo, b_hi = (lo // r) * r, min(-(-hi // r) * r, f.num_rows)
            raw_blocks = rechunk(f.read_range(b_lo, b_hi, self._plan.top_columns(), r), r)
            for k, raw in enumerate(raw_blocks):
                off = b_lo + k * r
                rep = Repairs()
                a, z = max(lo - off, 0), min(hi - off, raw.num_rows)
                try:
                    canon = convert_batch(raw, self._plan, self._schema, f.name, off, rep, f.path.parent)
                    canon = validate_batch(canon, f.name, off, rep)
                except DataError:
                    if (a == 0 and z == raw.num_rows) or z <= a:
                        raise
                    part = raw.slice(a, z - a)
                    canon = convert_batch(part, self._plan, self._schema, f.name, off + a, Repairs(), f.path.parent)
                    yield validate_batch(canon, f.name, off + a, Repairs())
                    continue
                if (fi, off) not in self._counted:
                    self._counted.add((fi, off))
                    self.repairs.merge(rep)
                if z > a:
                    yield canon.slice(a, z - a)


def open_dataset(
    path: str | os.PathLike | None = None,
    columns: Any = None,
    image_bands: Any = None,
    image_shape: Any = None,
    pixel_scale: Any = None,
    wavelength_start: Any = None,
    wavelength_step: Any = None,
    image_unit: str | None = None,
    flux_unit: str | None = None,
    image_layout: str = "auto",
    wavelength: str = "auto",
    batch_rows: Any = DEFAULT_BATCH_ROWS,
    limit: Any = None,
) -> FileDataset:
    """Open Parquet/Arrow file(s) (a file, a folder or a glob) with a column mapping.

    Options may be CLI strings: ``columns="object_id=id;flux=spec_flux;image=cutout"``,
    ``image_shape="4,64,64"``, ``image_bands="g,r,i,z"``. ``limit=N`` keeps only the first N objects in
    file order (files in the order resolved, rows in file order); it is recorded in the options, so it
    enters the fingerprint and the embedding cache key. A limit that is not a positive integer is a
    one-line UsageError.
    """
    n_limit = as_limit(limit)
    if path is None or str(path) == "":
        raise DataError("dataset 'parquet' needs path=<file, folder or glob>")
    files = limit_files([SourceFile(p) for p in resolve_files(path)], n_limit)
    mapping = parse_columns(columns) or default_columns(files[0].schema)
    if C.OBJECT_ID not in mapping:
        names = ", ".join(files[0].schema.names)
        raise DataError(
            f"{files[0].path}: no 'object_id' mapping (columns: {names}); pass columns=\"object_id=<column>;...\""
        )
    if wavelength not in ("auto", "column"):
        raise ValueError(f"option 'wavelength' must be 'auto' or 'column', got {wavelength!r}")
    if image_layout not in ("auto", "chw", "hwc"):
        raise ValueError(f"option 'image_layout' must be 'auto', 'chw' or 'hwc', got {image_layout!r}")
    one = {k: (v[0] if v else None) for k, v in mapping.items()}
    shape = tuple(int(s) for s in as_list(image_shape)) if image_shape is not None else None
    image_md = _image_metadata(files[0].schema, (mapping.get(C.IMAGE) or [None])[0])
    plan = Plan(
        object_id=mapping[C.OBJECT_ID],
        image=mapping.get(C.IMAGE, []),
        rgb=one.get(C.RGB),
        flux=one.get(C.FLUX),
        ivar=one.get(C.IVAR),
        error=one.get("error"),
        mask=one.get(C.MASK),
        wavelength=one.get(C.WAVELENGTH),
        labels={k: one[k] for k in C.LABEL_COLUMNS if one.get(k)},
        image_bands=as_list(image_bands) or image_md.get("bands"),
        image_shape=shape or image_md.get("shape"),
        image_layout=image_layout,
        pixel_scale=as_float(pixel_scale, "pixel_scale") if pixel_scale is not None else image_md.get("pixel_scale"),
        image_unit=image_unit or image_md.get("unit") or "unknown",
        flux_unit=flux_unit or _flux_unit(files[0].schema, one.get(C.FLUX)) or "unknown",
        wavelength_mode=wavelength,
        wavelength_start=as_float(wavelength_start, "wavelength_start"),
        wavelength_step=as_float(wavelength_step, "wavelength_step"),
    )
    if plan.flux and plan.wavelength_start is None and not plan.wavelength:
        grid = _grid_metadata(files[0].schema, plan.flux)
        if grid:
            plan.wavelength_start, plan.wavelength_step = grid
    opts = {
        "path": str(path),
        "columns": {k: ",".join(v) for k, v in mapping.items()},
        "batch_rows": as_int(batch_rows, "batch_rows"),
        "wavelength": wavelength,
        "image_layout": image_layout,
    }
    if n_limit is not None:  # recorded only when set, so unlimited runs keep their cache keys
        opts["limit"] = n_limit
    return FileDataset(files, plan, as_int(batch_rows, "batch_rows"), kind="files", options=opts)
