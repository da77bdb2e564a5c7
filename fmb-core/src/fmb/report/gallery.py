"""The top-k objects of each ranking: image cut-outs and spectrum thumbnails, read from the data set again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.io import atomic_path
from fmb.report.collect import Ranking, Run
from fmb.report.embedmap import UnavailableError
from fmb.report.figures import plt


@dataclass
class Card:
    """One gallery entry."""

    object_id: object
    rank: int
    score: float
    true_class: str | None
    image: Path | None
    spectrum: Path | None
    redshift: float | None = None
    ra: float | None = None
    dec: float | None = None


def top_ids(rk: Ranking, k: int) -> list:
    """Object ids of the k best-ranked objects, rank 1 first."""
    o = np.argsort(rk.rank, kind="stable")[:k]
    return rk.object_id[o].tolist()


def open_run_dataset(run: Run):
    """The run's data set, opened again from results.json; UnavailableError (with the reason) when it cannot be."""
    from fmb.plugins import registry
    from fmb.protocol.run import open_dataset

    cfg = run.result.get("config", {})
    try:
        ds = open_dataset(registry(), cfg["dataset"], dict(cfg.get("dataset_options") or {}))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnavailableError(f"cannot open data set {cfg.get('dataset')!r} again: {reason}") from None
    want = (run.result.get("dataset") or {}).get("fingerprint")
    if want and ds.fingerprint != want:
        raise UnavailableError(
            f"data set {cfg.get('dataset')!r} has changed since the run (fingerprint "
            f"{ds.fingerprint[:12]} != {want[:12]})"
        )
    return ds


def fetch_rows(ds, ids: list) -> dict[str, pa.RecordBatch]:
    """One-row batches of the wanted objects (keyed by str(object_id)), in one streaming pass."""
    want = {str(i) for i in ids}
    found: dict[str, pa.RecordBatch] = {}
    for batch in ds.iter_batches(256):
        col = [str(v) for v in batch.column(C.OBJECT_ID).to_pylist()]
        for j, v in enumerate(col):
            if v in want and v not in found:
                found[v] = batch.slice(j, 1)
        if len(found) == len(want):
            break
    return found


def cutout(row: pa.RecordBatch, path: Path) -> Path | None:
    """The bands and the RGB composite side by side (:func:`fmb.plots.object_card.draw_images`: the same drawing
    as ``fmb show``), with a scale bar; None when the object has no image."""
    from fmb.plots.object_card import draw_images, image_panels

    n = len(image_panels(row))
    if not n:
        return None
    p = plt()
    fig, axes = p.subplots(1, n, figsize=(1.15 * n, 1.3), squeeze=False)
    draw_images(list(axes[0]), row, small=True)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    p.close(fig)
    return path


class SpectrumThumbs:
    """Small binned spectra (:func:`fmb.plots.object_card.draw_spectrum`, as in ``fmb show``); one figure reused."""

    def __init__(self) -> None:
        self.fig = None

    def draw(self, row: pa.RecordBatch, path: Path) -> Path | None:
        from fmb.plots.object_card import draw_spectrum, redshift_of

        if C.FLUX not in row.schema.names:
            return None
        if self.fig is None:
            self.fig = plt().figure(figsize=(4.6, 1.9))
        self.fig.clf()
        ax = self.fig.add_axes((0.13, 0.22, 0.85, 0.66))
        draw_spectrum(ax, row, redshift_of(row), small=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            self.fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        return path

    def close(self) -> None:
        if self.fig is not None:
            plt().close(self.fig)
            self.fig = None


def _safe(v: object) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]", "-", str(v))[:80]


def _num(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def build_gallery(
    run: Run, k: int, fig_dir: Path, shared: dict[tuple[str, str], tuple[Path | None, Path | None]] | None = None
) -> dict[str, list[Card]]:
    """Per modality, the cards of the top-k objects; thumbnails under ``fig_dir/gallery``.

    ``shared`` (data set fingerprint, object id) -> thumbnails, filled in place, lets the runs of one report
    that read the same data set (a matrix) draw each object once; the data set is opened again only for
    objects not drawn yet (and then its fingerprint is checked against results.json).
    """
    fingerprint = str((run.result.get("dataset") or {}).get("fingerprint") or run.path)
    shared = {} if shared is None else shared
    wanted = {m.modality: top_ids(m, k) for m in run.rankings}
    todo = [i for ids in wanted.values() for i in ids if (fingerprint, str(i)) not in shared]
    rows = fetch_rows(open_run_dataset(run), todo) if todo else {}
    drawn = {key: v for (fp, key), v in shared.items() if fp == fingerprint}
    out: dict[str, list[Card]] = {}
    thumbs = SpectrumThumbs()
    for rk in run.rankings:
        pos = {str(v): i for i, v in enumerate(rk.object_id.tolist())}
        classes = rk.classes
        cards = []
        for oid in wanted[rk.modality]:
            key = str(oid)
            row = rows.get(key)
            if row is not None and key not in drawn:
                stem = fig_dir / "gallery" / f"object-{_safe(oid)}"
                drawn[key] = shared[(fingerprint, key)] = (
                    cutout(row, stem.with_name(stem.name + "-image.png")),
                    thumbs.draw(row, stem.with_name(stem.name + "-spectrum.png")),
                )
            img, spec = drawn.get(key, (None, None))
            i = pos[key]
            extra = {
                k: _num(rk.labels[c][i])
                for k, c in (("redshift", "redshift"), ("ra", C.RA), ("dec", C.DEC))
                if c in rk.labels
            }
            cards.append(
                Card(
                    oid,
                    int(rk.rank[i]),
                    float(rk.score[i]),
                    None if classes is None else str(classes[i]),
                    img,
                    spec,
                    **extra,
                )
            )
        out[rk.modality] = cards
    thumbs.close()
    return out
