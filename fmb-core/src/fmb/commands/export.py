"""``fmb export RUN_DIR --top N --format csv|votable|fits --out F``: the top-N of one system as a table."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = {"csv": "ascii.csv", "votable": "votable", "fits": "fits"}


def top_table(run_dir: str | Path, top: int, modality: str | None = None):
    """The ``top`` best-ranked objects of one run's ranking as an :class:`astropy.table.Table`.

    Columns: ``rank`` (1 = most anomalous), ``object_id``, ``score``, then whatever of the carried columns the
    run has (``ra``, ``dec`` in deg, truth, physical parameters) and, with coordinates, the ``legacy_viewer``
    and ``esasky`` URLs (:mod:`fmb.report.sky`). ``modality`` defaults to ``joint`` where the run has it, else
    the first one in scores.parquet. Raises UsageError (not a run folder, unknown modality).
    """
    import numpy as np
    from astropy.table import Table

    from fmb.data import canonical as C
    from fmb.errors import UsageError
    from fmb.report import sky
    from fmb.runs import read_run

    result, scores = read_run(Path(run_dir))
    mods = list(dict.fromkeys(scores.column("modality").to_pylist()))
    mod = modality or ("joint" if "joint" in mods else mods[0])
    if mod not in mods:
        raise UsageError(f"{run_dir}: no modality {mod!r} in scores.parquet (it has {', '.join(mods)})")
    cols = {c: scores.column(c).to_numpy(zero_copy_only=False) for c in scores.column_names}
    rank = np.asarray(cols["rank"], dtype=np.float64)
    sel = np.flatnonzero((cols["modality"] == mod) & np.isfinite(rank))
    sel = sel[np.argsort(rank[sel], kind="stable")][:top]
    t = Table()
    t["rank"] = rank[sel].astype(np.int64)
    ids = cols[C.OBJECT_ID][sel]
    t["object_id"] = ids.astype(str) if ids.dtype == object else ids
    t["score"] = np.asarray(cols["score"], dtype=np.float64)[sel]
    for c in C.LABEL_COLUMNS:
        if c in cols:
            v = cols[c][sel]
            t[c] = v.astype(str) if v.dtype == object and c == C.ANOMALY_CLASS else v
            if c in C.COORDINATES:
                t[c].unit = "deg"
    if C.RA in cols and C.DEC in cols:
        t["legacy_viewer"] = [sky.legacy_viewer_url(a, d) or "" for a, d in zip(t[C.RA], t[C.DEC])]
        t["esasky"] = [sky.esasky_url(a, d) or "" for a, d in zip(t[C.RA], t[C.DEC])]
    cfg = result.get("config", {})
    # FITS-safe keys (8 characters at most, no HIERARCH cards)
    t.meta.update(
        {
            "FMBMODEL": str(cfg.get("model")),
            "FMBDET": str(cfg.get("detector")),
            "FMBDATA": str(cfg.get("dataset")),
            "FMBMODAL": mod,
            "FMBRUN": str(Path(run_dir)),
        }
    )
    return t


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=100, show_default=True, help="Objects to export.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default="csv",
    show_default=True,
    help="csv, votable or fits (TOPCAT reads all three; units and provenance in votable and fits).",
)
@click.option("--modality", default=None, help="Which ranking (default joint where present, else the first).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write (replaced).")
def export_cmd(run_dir: str, top: int, fmt: str, modality: str | None, out: str) -> None:
    """Write the top-N objects of one system (rank, id, score, coordinates, viewer links, truth) as a table."""
    from fmb.io import atomic_path

    t = top_table(run_dir, top, modality)
    with atomic_path(Path(out)) as tmp:
        t.write(tmp, format=FORMATS[fmt], overwrite=True)
    click.echo(f"wrote {len(t)} objects ({t.meta['FMBMODAL']}) to {out}")
