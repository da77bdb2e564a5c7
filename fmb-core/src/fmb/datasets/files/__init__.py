"""Dataset ``parquet``: a user's own Parquet or Arrow (IPC/feather) files, mapped onto canonical fields.

``columns`` maps a canonical name to a source column, as a TOML table or as a CLI string
``"object_id=id;flux=spec_flux;image=cutout"``. A value may name a struct member with a dot
(``flux=spectrum.flux``) or list several columns with commas: for ``image`` one column per
band (stacked in order), for ``object_id`` fallbacks (the first non-null is used).
Canonical names: object_id, image, rgb, flux, ivar, error, mask, wavelength, is_anomaly,
anomaly_class, redshift, log_mstar, log_sfr. Without ``columns`` every canonical name present
in the file is used as is.

Images may be fixed-size lists (give ``image_shape``), nested lists, or encoded bytes (PNG/JPEG
via Pillow, ``.npy``; also Hugging Face ``Image`` structs ``{bytes, path}``). Spectra give
``ivar`` or ``error``; ``ivar = 1/error**2`` where the error is finite and > 0, else ``ivar = 0``
and ``mask = True`` (counted as ``spectrum_invalid_error_masked``). The reading machinery here is
shared with the ``euclid-desi`` dataset.

A package of four modules: :mod:`~fmb.datasets.files.sources` (file discovery, readers, fingerprint),
:mod:`~fmb.datasets.files.mapping` (column mapping, :class:`Plan`), :mod:`~fmb.datasets.files.columns`
(column extraction) and :mod:`~fmb.datasets.files.dataset` (:class:`FileDataset`, :func:`open_dataset`).
Names are re-exported here: ``fmb.datasets.files:open_dataset`` stays the registered loader.
"""

from fmb.datasets.files.columns import (
    canonical_schema,
    convert_batch,
    dataset_id_type,
    decode_image_bytes,
    error_to_ivar,
    get_column,
    image_layout,
    image_rows,
    nested_to_numpy,
    shared_grid,
)
from fmb.datasets.files.dataset import FileDataset, open_dataset
from fmb.datasets.files.mapping import CANONICAL_KEYS, Plan, default_columns, parse_columns
from fmb.datasets.files.sources import (
    ARROW_EXT,
    DEFAULT_BATCH_ROWS,
    PARQUET_EXT,
    SourceFile,
    limit_files,
    rechunk,
    resolve_files,
)
from fmb.params import as_bool, as_float, as_int, as_list

__all__ = [
    "ARROW_EXT",
    "CANONICAL_KEYS",
    "DEFAULT_BATCH_ROWS",
    "PARQUET_EXT",
    "FileDataset",
    "Plan",
    "SourceFile",
    "as_bool",
    "as_float",
    "as_int",
    "as_list",
    "canonical_schema",
    "convert_batch",
    "dataset_id_type",
    "decode_image_bytes",
    "default_columns",
    "error_to_ivar",
    "get_column",
    "image_layout",
    "image_rows",
    "limit_files",
    "nested_to_numpy",
    "open_dataset",
    "parse_columns",
    "rechunk",
    "resolve_files",
    "shared_grid",
]
