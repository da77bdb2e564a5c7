"""The leaderboard of a benchmark matrix: one row per system (and scored output), ranked by the main score.

A *system* is everything in :data:`fmb.runs.SYSTEM_KEYS` but the seed (model and its options,
detector and its parameters, data set and its options, weights) plus the scored output (``modality``).
Several seeds of one system are one row: the mean and the sample standard deviation over seeds
(``ddof=1``; NaN for a single seed) of AUROC and average precision, and the mean over seeds of each
seed's bootstrap interval bounds (``*_ci_low``/``*_ci_high``: the uncertainty from the finite sample of
objects, :func:`fmb.protocol.metrics.bootstrap_intervals`, recorded in results.json).

The main score is :data:`MAIN_SCORE` (AUROC; higher is better): rows are sorted by it, best first.
Written as ``leaderboard.csv`` and ``leaderboard.parquet`` (main score and direction in the Parquet
schema metadata) at the root of every matrix run, and by ``fmb leaderboard RUN_DIR...``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmb.errors import UsageError
from fmb.params import format_spec
from fmb.runs import expand_run_dirs, read_results

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

#: the declared main score (a key of ``modalities[output]["metrics"]``) and its direction
MAIN_SCORE = "auroc"
HIGHER_IS_BETTER = True
#: the scores summarised per row: (results.json metric key, column prefix)
SCORES = (("auroc", "auroc"), ("average_precision", "ap"))
CSV = "leaderboard.csv"
PARQUET = "leaderboard.parquet"

COLUMNS = [
    "rank",
    "system",
    "modality",
    "model",
    "detector",
    "dataset",
    "weights",
    "n_seeds",
    "seeds",
    "auroc",
    "auroc_sd",
    "auroc_ci_low",
    "auroc_ci_high",
    "ap",
    "ap_sd",
    "ap_ci_low",
    "ap_ci_high",
    "n_objects",
    "n_anomalies",
    "run_dirs",
]


def system_label(config: dict[str, Any]) -> str:
    """``model[:opts]/detector[:params]/dataset[:opts]`` (and ``/weights=W`` unless ``auto``): the full
    formatted specs (:func:`fmb.params.format_spec`), so that ``knn`` and ``knn:n_neighbors=10`` differ."""
    parts = [
        format_spec(config.get("model", "?"), config.get("model_options") or {}),
        format_spec(config.get("detector", "?"), config.get("detector_params") or {}),
        format_spec(config.get("dataset", "?"), config.get("dataset_options") or {}),
    ]
    weights = config.get("weights", "auto")
    if weights not in (None, "auto"):
        parts.append(f"weights={weights}")
    return "/".join(parts)


def _seed_key(seed: Any) -> tuple[int, Any]:
    return (0, seed) if isinstance(seed, int) else (1, str(seed))


def _mean(v: list[float]) -> float:
    v = [x for x in v if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


def _sd(v: list[float]) -> float:
    import numpy as np

    v = [x for x in v if x is not None and math.isfinite(x)]
    return float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def leaderboard(run_dirs: list[str] | tuple[str, ...] | str | Path) -> pd.DataFrame:
    """The leaderboard of run folders (matrix folders are expanded, :func:`fmb.runs.expand_run_dirs`):
    a DataFrame with :data:`COLUMNS`, one row per system and scored output, sorted by the main score
    (best first; rows without labels last). ``df.attrs`` holds ``main_score`` and ``higher_is_better``.

    Raises UsageError (one line) for a folder that is not a complete run, and for two folders holding the
    same system and seed (their mean and spread would count one seed twice).
    """
    import pandas as pd

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for d in expand_run_dirs(run_dirs):
        res = read_results(d)
        cfg = res.get("config") or {}
        label = system_label(cfg)
        for mod, entry in (res.get("modalities") or {}).items():
            g = groups.setdefault((label, mod), {"cfg": cfg, "seeds": {}})
            seed = cfg.get("seed")
            if seed in g["seeds"]:
                raise UsageError(
                    f"{str(d)!r} and {g['seeds'][seed]['dir']!r} hold the same system ({label}) "
                    f"and seed {seed}: give one of them"
                )
            g["seeds"][seed] = {"dir": str(d), "m": entry.get("metrics") or {}}
    rows = []
    for (label, mod), g in groups.items():
        cfg, seeds = g["cfg"], [g["seeds"][s] for s in sorted(g["seeds"], key=_seed_key)]
        row: dict[str, Any] = {
            "system": label,
            "modality": mod,
            "model": format_spec(cfg.get("model", "?"), cfg.get("model_options") or {}),
            "detector": format_spec(cfg.get("detector", "?"), cfg.get("detector_params") or {}),
            "dataset": format_spec(cfg.get("dataset", "?"), cfg.get("dataset_options") or {}),
            "weights": cfg.get("weights", "auto"),
            "n_seeds": len(seeds),
            "seeds": ",".join(str(s) for s in sorted(g["seeds"], key=_seed_key)),
            "n_objects": seeds[0]["m"].get("n_objects"),
            "n_anomalies": seeds[0]["m"].get("n_anomalies"),
            "run_dirs": json.dumps([s["dir"] for s in seeds]),
        }
        for key, col in SCORES:
            vals = [s["m"].get(key) for s in seeds]
            cis = [s["m"].get(f"{key}_ci") or [None, None] for s in seeds]
            row[col], row[f"{col}_sd"] = _mean(vals), _sd(vals)
            row[f"{col}_ci_low"], row[f"{col}_ci_high"] = _mean([c[0] for c in cis]), _mean([c[1] for c in cis])
        rows.append(row)
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    if len(df):
        df = df.sort_values(
            [MAIN_SCORE, "system", "modality"],
            ascending=[not HIGHER_IS_BETTER, True, True],
            na_position="last",
            kind="mergesort",
        ).reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    df.attrs.update(main_score=MAIN_SCORE, higher_is_better=HIGHER_IS_BETTER)
    return df


def write_leaderboard(df: pd.DataFrame, folder: str | Path) -> list[Path]:
    """``leaderboard.csv`` and ``leaderboard.parquet`` in ``folder`` (atomic writes, :mod:`fmb.io`); the
    Parquet schema metadata records ``fmb.main_score`` and ``fmb.higher_is_better``. Returns the paths."""
    import pyarrow as pa

    from fmb.io import atomic_path, write_parquet

    folder = Path(folder)
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {
        **(table.schema.metadata or {}),
        b"fmb.main_score": MAIN_SCORE.encode(),
        b"fmb.higher_is_better": str(HIGHER_IS_BETTER).lower().encode(),
    }
    write_parquet(table.replace_schema_metadata(meta), folder / PARQUET)
    with atomic_path(folder / CSV) as tmp:
        df.to_csv(tmp, index=False)
    return [folder / CSV, folder / PARQUET]


def _cell(mean: float, sd: float, lo: float, hi: float) -> str:
    if not math.isfinite(mean):
        return "-"
    s = f"{mean:.3f}"
    if math.isfinite(sd):
        s += f" ± {sd:.3f}"
    if math.isfinite(lo) and math.isfinite(hi):
        s += f" [{lo:.3f}, {hi:.3f}]"
    return s


def leaderboard_table(df: pd.DataFrame) -> Table:
    """The leaderboard as a rich table: ``mean ± sd [ci_low, ci_high]`` per score."""
    from rich.table import Table

    direction = "higher is better" if HIGHER_IS_BETTER else "lower is better"
    t = Table(title=f"FMB leaderboard (main score: {MAIN_SCORE.upper()}, {direction})", header_style="bold")
    for col in ("#", "system", "modality", "seeds", "AUROC ± sd [95% CI]", "AP ± sd [95% CI]"):
        t.add_column(col, justify="right" if col in ("#", "seeds") else "left")
    for r in df.itertuples(index=False):
        t.add_row(
            str(r.rank),
            r.system,
            r.modality,
            str(r.n_seeds),
            _cell(r.auroc, r.auroc_sd, r.auroc_ci_low, r.auroc_ci_high),
            _cell(r.ap, r.ap_sd, r.ap_ci_low, r.ap_ci_high),
        )
    t.caption = (
        "mean ± sd over seeds (sd with several seeds); [CI]: bootstrap interval over objects "
        "(mean of the seeds' bounds)"
    )
    return t
