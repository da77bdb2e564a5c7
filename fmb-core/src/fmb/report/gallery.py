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

CUTOUT_PX = 160


@dataclass
class Card:
    """One gallery entry."""

    object_id: object
    rank: int
    score: float
    true_class: str | None
    image: Path | None
    spectrum: Path | None


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
        raise UnavailableError(f"data set {cfg.get('dataset')!r} has changed since the run (fingerprint "
                          f"{ds.fingerprint[:12]} != {want[:12]})")
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


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(img, [1, 99.7])
    soft = max(hi - lo, 1e-12) / 20
    x = np.arcsinh((img - lo) / soft) / max(np.arcsinh((hi - lo) / soft), 1e-12)
    return np.clip(np.nan_to_num(x), 0, 1)


def cutout(row: pa.RecordBatch, path: Path) -> Path | None:
    """The RGB composite (or the first band, stretched) as a PNG upscaled to ~160 px."""
    from PIL import Image

    names = row.schema.names
    if C.RGB in names:
        arr = np.moveaxis(C.column_array(row, C.RGB, np.uint8)[0], 0, -1)
        im = Image.fromarray(np.ascontiguousarray(arr[::-1]), "RGB")
    elif C.IMAGE in names:
        band = C.column_array(row, C.IMAGE)[0][0]
        im = Image.fromarray((_stretch(band)[::-1] * 255).astype(np.uint8), "L")
    else:
        return None
    scale = max(1, CUTOUT_PX // max(im.size))
    im = im.resize((im.size[0] * scale, im.size[1] * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path


class SpectrumThumbs:
    """Small spectrum plots (masked pixels dropped) with wavelength and flux units; one figure reused."""

    def __init__(self) -> None:
        self.fig = None

    def draw(self, row: pa.RecordBatch, path: Path) -> Path | None:
        if C.FLUX not in row.schema.names:
            return None
        wave = C.wavelength(row)
        wave = wave[0] if wave.ndim == 2 else wave
        flux = C.column_array(row, C.FLUX)[0].astype(float)
        bad = np.zeros(len(flux), bool)
        if C.MASK in row.schema.names:
            bad |= C.column_array(row, C.MASK, bool)[0]
        if C.IVAR in row.schema.names:
            bad |= C.column_array(row, C.IVAR)[0] <= 0
        f = np.where(bad, np.nan, flux)
        unit = (C.field_meta(row.schema.field(C.FLUX), "unit", "") or "arbitrary units").replace("Angstrom", "Å")
        if self.fig is None:
            self.fig = plt().figure(figsize=(3.8, 1.8))
        self.fig.clf()
        ax = self.fig.add_axes((0.12, 0.25, 0.86, 0.63))
        ax.plot(wave, f, lw=0.4, color="C0")
        fin = f[np.isfinite(f)]
        if fin.size:
            lo, hi = np.percentile(fin, [0.5, 99.5])
            pad = 0.15 * (hi - lo + 1e-12)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("observed wavelength [Å]", fontsize=7, labelpad=1)
        ax.set_ylabel("flux", fontsize=7, labelpad=1)
        ax.set_title(f"flux in {unit}", fontsize=7, loc="left", pad=2)
        ax.tick_params(labelsize=6.5, pad=1)
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


def build_gallery(run: Run, k: int, fig_dir: Path) -> dict[str, list[Card]]:
    """Per modality, the cards of the top-k objects; thumbnails under ``fig_dir/gallery``."""
    ds = open_run_dataset(run)
    wanted = {m.modality: top_ids(m, k) for m in run.rankings}
    rows = fetch_rows(ds, [i for ids in wanted.values() for i in ids])
    drawn: dict[str, tuple[Path | None, Path | None]] = {}
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
                drawn[key] = (cutout(row, stem.with_name(stem.name + "-image.png")),
                              thumbs.draw(row, stem.with_name(stem.name + "-spectrum.png")))
            img, spec = drawn.get(key, (None, None))
            i = pos[key]
            cards.append(Card(oid, int(rk.rank[i]), float(rk.score[i]),
                              None if classes is None else str(classes[i]), img, spec))
        out[rk.modality] = cards
    thumbs.close()
    return out
