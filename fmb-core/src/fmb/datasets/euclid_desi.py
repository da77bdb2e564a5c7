"""Dataset ``euclid-desi``: Euclid Q1 cutouts x DESI DR1 spectra (Hugging Face
``msiudek/astroPT_euclid_Q1_desi_dr1_dataset``, splits ``train`` and ``test``).

Sources (``source=``): ``disk`` -- a ``datasets.save_to_disk`` folder (Arrow IPC streams, read
with pyarrow; ``datasets`` is not needed); ``parquet`` -- Parquet file(s): a file, a folder or a
glob; ``hub`` -- the Hugging Face hub through ``huggingface_hub.snapshot_download`` (honours
``HF_HUB_OFFLINE`` and the HF cache); ``auto`` -- ``hub`` without a path, else disk or parquet.

Canonical conversion (see docs/datasets/real-data.md):

* ``object_id`` from ``object_id``, falling back to ``targetid`` (int64, or string when the
  source ids are strings);
* ``image`` float32 ``[4, H, W]``, bands VIS, Y, J, H from ``VIS_image``, ``NISP_Y_image``,
  ``NISP_J_image``, ``NISP_H_image``; with ``units="nanomaggies"`` (default) each band is
  multiplied by ``ZP / 3631`` with the zero points (nJy per ADU) below, since 1 nanomaggy =
  3631 nJy; ``units="raw"`` keeps the stored values. Pixel scale 0.1 arcsec;
* ``rgb`` uint8 ``[3, H, W]`` from the PNG in ``RGB_image`` (``rgb=false`` skips it);
* ``flux`` from ``spectrum.flux``; ``ivar = 1/error**2`` where the error is finite and > 0,
  otherwise ``ivar = 0`` and ``mask = True``; the wavelength grid is the shared DESI grid
  3600 + 0.8 i Angstrom when the data carry it (checked per batch), else a per-row column;
* ``redshift``; look-alike fixtures also carry ``is_anomaly`` and ``anomaly_type``
  (-> ``anomaly_class``, with ``none`` -> ``normal``). ``sed_data`` is not used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from fmb.data.canonical import DataError
from fmb.datasets.files import (
    DEFAULT_BATCH_ROWS,
    PARQUET_EXT,
    FileDataset,
    Plan,
    SourceFile,
    limit_files,
    resolve_files,
)
from fmb.params import as_bool, as_int, as_limit

HF_DATASET_ID = "msiudek/astroPT_euclid_Q1_desi_dr1_dataset"
SPLITS = ("train", "test")
SOURCES = ("auto", "disk", "parquet", "hub")
BANDS = ("VIS", "Y", "J", "H")
BAND_COLUMNS = ("VIS_image", "NISP_Y_image", "NISP_J_image", "NISP_H_image")
#: Photometric zero points in nJy per ADU (as used by upstream FMB's AION conversion).
ZERO_POINTS_NJY = {"VIS": 2835.34, "Y": 1916.10, "J": 1370.25, "H": 918.35}
NANOMAGGY_NJY = 3631.0
PIXEL_SCALE = 0.1
FLUX_UNIT = "1e-17 erg/s/cm2/Angstrom"


class EuclidDesiDataset(FileDataset):
    """The Euclid x DESI data set in canonical form (streams record batches, never loads it all)."""

    name = "euclid-desi"


def open_dataset(
    path: str | os.PathLike | None = None,
    split: str = "test",
    source: str = "auto",
    revision: str | None = None,
    batch_rows: Any = DEFAULT_BATCH_ROWS,
    units: str = "nanomaggies",
    rgb: Any = True,
    wavelength: str = "auto",
    repo_id: str = HF_DATASET_ID,
    cache_dir: str | None = None,
    limit: Any = None,
) -> EuclidDesiDataset:
    """Open the Euclid x DESI data set (see the module docstring for sources and conversion).

    ``split``: ``train``, ``test``, a comma list, or ``all``. ``wavelength``: ``auto`` (shared
    grid when the data have one) or ``column`` (always a per-row ``wavelength`` column). ``limit=N``: only
    the first N objects in file order (splits in the order given); recorded in the options (fingerprint and
    cache key); not a positive integer -> one-line UsageError.
    """
    n_limit = as_limit(limit)
    splits = _splits(split)
    source, units, wavelength = str(source).lower(), str(units).lower(), str(wavelength).lower()
    if source not in SOURCES:
        raise ValueError(f"option 'source' must be one of {', '.join(SOURCES)}, got {source!r}")
    if units not in ("nanomaggies", "raw"):
        raise ValueError(f"option 'units' must be 'nanomaggies' or 'raw', got {units!r}")
    if wavelength not in ("auto", "column"):
        raise ValueError(f"option 'wavelength' must be 'auto' or 'column', got {wavelength!r}")
    kind, paths = _resolve(path, splits, source, revision, repo_id, cache_dir)
    files = limit_files([SourceFile(p) for p in paths], n_limit)
    plan = _plan(files[0], units, as_bool(rgb), wavelength)
    opts = {
        "path": str(path) if path is not None else None,
        "split": ",".join(splits),
        "source": kind,
        "revision": revision,
        "repo_id": repo_id,
        "units": units,
        "rgb": as_bool(rgb),
        "wavelength": wavelength,
        "batch_rows": as_int(batch_rows, "batch_rows"),
    }
    if n_limit is not None:  # recorded only when set, so unlimited runs keep their cache keys
        opts["limit"] = n_limit
    return EuclidDesiDataset(files, plan, as_int(batch_rows, "batch_rows"), kind=kind, options=opts)


def _splits(split: Any) -> list[str]:
    if isinstance(split, (list, tuple)):
        names = [str(s).strip() for s in split]
    else:
        names = [s.strip() for s in str(split).split(",") if s.strip()]
    if names in (["all"], ["*"]):
        return list(SPLITS)
    if not names:
        raise ValueError("option 'split' is empty")
    return names


def _plan(first: SourceFile, units: str, rgb: bool, wavelength: str) -> Plan:
    names = first.schema.names
    ids = [c for c in ("object_id", "targetid") if c in names] or ["object_id"]
    spectrum = first.schema.field("spectrum").type if "spectrum" in names else None

    def has(key: str) -> bool:
        return spectrum is not None and pa.types.is_struct(spectrum) and spectrum.get_field_index(key) >= 0

    labels = {
        k: s
        for k, s in (("is_anomaly", "is_anomaly"), ("anomaly_class", "anomaly_type"), ("redshift", "redshift"))
        if s in names
    }
    for key, candidates in (
        ("ra", ("ra", "RA", "right_ascension", "RIGHT_ASCENSION", "TARGET_RA")),
        ("dec", ("dec", "DEC", "declination", "DECLINATION", "TARGET_DEC")),
    ):
        found = next((c for c in candidates if c in names), None)
        if found:  # sky coordinates where the release has them (degrees, ICRS)
            labels[key] = found
    use_ivar = has("ivar") and not has("error")
    scale = [ZERO_POINTS_NJY[b] / NANOMAGGY_NJY for b in BANDS] if units == "nanomaggies" else None
    return Plan(
        object_id=ids,
        image=list(BAND_COLUMNS),
        rgb="RGB_image" if rgb and "RGB_image" in names else None,
        flux="spectrum.flux",
        error=None if use_ivar else "spectrum.error",
        ivar="spectrum.ivar" if use_ivar else None,
        wavelength="spectrum.wavelength" if has("wavelength") else None,
        labels=labels,
        image_bands=list(BANDS),
        band_scale=scale,
        pixel_scale=PIXEL_SCALE,
        image_unit="nanomaggies" if units == "nanomaggies" else "adu",
        flux_unit=FLUX_UNIT,
        wavelength_mode="column" if wavelength == "column" else "auto",
    )


# ----------------------------------------------------------------------------- where the files are


def _resolve(
    path: Any, splits: list[str], source: str, revision: str | None, repo_id: str, cache_dir: str | None
) -> tuple[str, list[Path]]:
    if source == "hub" or (source == "auto" and (path is None or str(path) == "")):
        return "hub", [f for s in splits for f in hub_files(repo_id, s, revision, cache_dir)]
    if path is None or str(path) == "":
        raise DataError(f"dataset 'euclid-desi' with source={source} needs path=<folder or files>")
    root = Path(path).expanduser()
    if source in ("auto", "disk"):
        dirs = [_disk_dir(root, s, repo_id, len(splits) == 1) for s in splits]
        if all(dirs):
            return "disk", [f for d in dirs for f in _disk_files(d)]
        if source == "disk":
            missing = splits[dirs.index(None)]
            raise DataError(
                f"{root}: no save_to_disk folder for split {missing!r} (looked for "
                f"{_disk_name(repo_id, missing)}/, {missing}/ and {root.name}/ with state.json)"
            )
    paths = [f for s in splits for f in split_files(root, s)]
    return ("parquet" if all(p.suffix.lower() in PARQUET_EXT for p in paths) else "arrow"), paths


def _disk_name(repo_id: str, split: str) -> str:
    return f"{repo_id.replace('/', '__')}__{split}"


def _disk_dir(root: Path, split: str, repo_id: str, single: bool) -> Path | None:
    candidates = [root / _disk_name(repo_id, split), root / split] + ([root] if single else [])
    return next((d for d in candidates if (d / "state.json").is_file()), None)


def _disk_files(folder: Path) -> list[Path]:
    """The Arrow files of a ``save_to_disk`` folder, in the order ``state.json`` lists them."""
    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / d["filename"] for d in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{folder / 'state.json'}: unreadable save_to_disk state ({exc})") from None
    if not files:
        raise DataError(f"{folder}: save_to_disk folder lists no data files")
    return files


def _matches_split(rel: Path, split: str) -> bool:
    stem = rel.name.split(".")[0]
    return (
        stem == split
        or stem.startswith((f"{split}-", f"{split}_"))
        or split in rel.parts[:-1]
        or any(p.endswith(f"__{split}") for p in rel.parts[:-1])
    )


def _arrow_cache_split(name: str, split: str) -> bool:
    """``datasets`` cache shards: ``<builder>-<split>.arrow``, ``<builder>-<split>-00000-of-00002.arrow``."""
    return name.endswith(f"-{split}.arrow") or (f"-{split}-" in name and name.endswith(".arrow"))


def split_files(root: Path, split: str) -> list[Path]:
    """Files of ``split`` under a folder: Parquet (``data/test-00000-of-00001.parquet``, ``test/*.parquet``
    ...), else the Arrow shards of a ``load_dataset`` cache; a file or glob is taken as is."""
    if not root.is_dir():
        return resolve_files(root)
    every = sorted(f for f in root.rglob("*") if f.is_file())
    files = [f for f in every if f.suffix.lower() in PARQUET_EXT]
    chosen = [f for f in files if _matches_split(f.relative_to(root), split)]
    if chosen:
        return chosen
    cached = [f for f in every if _arrow_cache_split(f.name, split)]
    if cached and not files:
        return cached
    if files and not any(_matches_split(f.relative_to(root), s) for f in files for s in SPLITS):
        return files
    found = ", ".join(str(f.relative_to(root)) for f in files[:5]) or "none"
    raise DataError(f"{root}: no Parquet files for split {split!r} (found: {found})")


# ----------------------------------------------------------------------------- the hub


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def _hf_cache(cache_dir: str | None) -> str | None:
    """The hub cache: the option, else ``$HF_HUB_CACHE`` / ``$HF_HOME/hub`` read now, else the default."""
    if cache_dir:
        return str(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def hub_patterns(split: str) -> list[str]:
    """Parquet layouts of a split on the hub (``push_to_hub`` and the ``refs/convert/parquet`` branch)."""
    return [
        f"data/{split}-*.parquet",
        f"data/{split}/*.parquet",
        f"{split}-*.parquet",
        f"{split}/*.parquet",
        f"*/{split}/*.parquet",
    ]


def hub_files(repo_id: str, split: str, revision: str | None = None, cache_dir: str | None = None) -> list[Path]:
    """Download (or find in the HF cache) the Parquet files of one split."""
    hint = f"give a local copy instead: --dataset euclid-desi:path=<save_to_disk folder or parquet files>,split={split}"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(f"huggingface_hub is not installed (pip install 'fmb-core[hf]'); {hint}") from None
    offline = _offline()
    try:
        root = snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=hub_patterns(split),
            cache_dir=_hf_cache(cache_dir),
            local_files_only=offline,
        )
    except Exception as exc:
        if offline:
            raise DataError(
                f"{repo_id} (split {split!r}) is not in the Hugging Face cache and HF_HUB_OFFLINE=1; {hint}"
            ) from None
        raise DataError(
            f"{repo_id} (split {split!r}): hub download failed "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); {hint}"
        ) from None
    root_path = Path(root)
    files = sorted(f for f in root_path.rglob("*.parquet") if _matches_split(f.relative_to(root_path), split))
    if not files:
        state = "the cached snapshot" if offline else "the hub repository"
        raise DataError(f"{repo_id}: no Parquet files for split {split!r} in {state} ({root_path}); {hint}")
    return files
