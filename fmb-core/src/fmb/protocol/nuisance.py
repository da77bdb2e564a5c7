"""Nuisance diagnostic: does a system's score merely track brightness or signal-to-noise?

For each scored output, the Spearman rank correlation (``scipy.stats.spearmanr``) of the score with

* ``spectrum_snr``: the median per-pixel S/N of the spectrum, median of |flux| x sqrt(ivar) over the usable
  pixels (mask False, ivar > 0, finite);
* ``image_flux``: the total flux of the stamp's first band (e.g. VIS; sum of finite pixels, the data set's
  unit). Its magnitude is a decreasing function of it, so Spearman with the magnitude is minus this value.

A detector whose score correlates strongly (|rho| near 1) with either only finds faint or bright objects.
Values are ``None`` where a modality is missing or fewer than 3 objects have both numbers, or one of them is
constant. The per-object variables are computed in one pass over the data set per run
(:func:`dataset_variables`, :func:`variables_for`), shared by every output of the run, and written per object to
scores.parquet (columns ``spectrum_snr`` and ``image_flux``) for the report's figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C

VARIABLES = ("spectrum_snr", "image_flux")


def object_variables(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """Per-object nuisance variables [N] of one canonical batch (NaN where the modality is missing)."""
    n = batch.num_rows
    out = {v: np.full(n, np.nan) for v in VARIABLES}
    names = batch.schema.names
    if C.FLUX in names and C.IVAR in names:
        flux = C.column_array(batch, C.FLUX).astype(np.float64)
        ivar = C.column_array(batch, C.IVAR).astype(np.float64)
        good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
        if C.MASK in names:
            good &= ~C.column_array(batch, C.MASK, bool)
        snr = np.where(good, np.abs(flux) * np.sqrt(np.where(good, ivar, 0.0)), np.nan)
        has = good.any(axis=1)
        out["spectrum_snr"][has] = np.nanmedian(snr[has], axis=1)
    if C.IMAGE in names:
        img = C.column_array(batch, C.IMAGE)[:, 0].astype(np.float64)
        fin = np.isfinite(img).any(axis=(1, 2))
        out["image_flux"][fin] = np.nansum(img[fin], axis=(1, 2))
    return out


def dataset_variables(dataset: Any, batch_size: int = 256) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(object_id [N], {variable: [N]})`` over the whole data set: one pass per dataset object (kept on it).

    Not shared between dataset objects (e.g. by fingerprint): a pass over the data also counts the data
    set's repairs on that object (results.json ``dataset.repairs``), so every run makes its own.
    """
    cached = getattr(dataset, "_fmb_nuisance", None)
    if cached is not None:
        return cached
    ids, parts = [], []
    for batch in dataset.iter_batches(batch_size):
        ids.append(batch.column(C.OBJECT_ID).to_numpy(zero_copy_only=False))
        parts.append(object_variables(batch))
    res = (
        np.concatenate(ids) if ids else np.zeros(0, np.int64),
        {v: np.concatenate([p[v] for p in parts]) if parts else np.zeros(0) for v in VARIABLES},
    )
    try:
        dataset._fmb_nuisance = res
    except AttributeError:  # a dataset class with __slots__: recomputed on the next call
        pass
    return res


def variables_for(dataset: Any, table: pa.Table) -> dict[str, np.ndarray]:
    """``{variable: [N]}`` for the rows of ``table`` (matched by ``object_id``; NaN where the data set has
    no such object or the modality is missing): the per-object columns of scores.parquet."""
    ids, var = dataset_variables(dataset)
    want = table.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
    out = {v: np.full(len(want), np.nan) for v in VARIABLES}
    if not len(ids) or not len(want):
        return out
    order = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids[order], want), 0, len(ids) - 1)
    found = ids[order][pos] == want
    for v in VARIABLES:
        out[v][found] = var[v][order][pos[found]]
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rho over the rows where both are finite; None for < 3 rows or a constant column."""
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return None
    return float(spearmanr(a[ok], b[ok]).statistic)


def nuisance_correlations(
    dataset: Any, table: pa.Table, scores: np.ndarray, variables: dict[str, np.ndarray] | None = None
) -> dict[str, float | None]:
    """``{variable: Spearman rho of the score with it}`` for the rows of ``table`` (scores [N], NaN where not
    scored), matched to the data set's objects by ``object_id``; ``variables``: :func:`variables_for` of the
    same rows, when the caller already has them."""
    var = variables_for(dataset, table) if variables is None else variables
    return {v: spearman(np.asarray(scores, np.float64), var[v]) for v in VARIABLES}
