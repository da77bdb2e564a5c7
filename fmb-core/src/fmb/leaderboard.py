"""The leaderboard of a benchmark matrix: one row per system (and scored output), ranked by the main score.

A *system* is everything in :data:`fmb.runs.SYSTEM_KEYS` but the seed (model and its options,
detector and its parameters, data set and its options, weights) plus the scored output (``modality``).
Several seeds of one system are one row: the mean and the sample standard deviation over seeds
(``ddof=1``; NaN for a single seed) of AUROC and average precision, and the mean over seeds of each
seed's bootstrap interval bounds (``*_ci_low``/``*_ci_high``: the uncertainty from the finite sample of
objects, :func:`fmb.protocol.metrics.bootstrap_intervals`, recorded in results.json).

Every other metric of the report's table (:data:`MORE_SCORES`: P@k, R@k, artefact fractions) is given
the same way (column = the results.json key, and ``<key>_sd``), and the ranking stability over seeds:
the mean and the worst pairwise Jaccard of the seeds' top-50 and top-1% sets (:func:`seed_stability`).

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
from fmb.retrained import NOT_HELD_OUT, not_held_out_note, weights_facts
from fmb.runs import expand_run_dirs, read_results

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

#: the declared main score (a key of ``modalities[output]["metrics"]``) and its direction
MAIN_SCORE = "auroc"
HIGHER_IS_BETTER = True
#: the scores summarised per row: (results.json metric key, column prefix)
SCORES = (("auroc", "auroc"), ("average_precision", "ap"))
#: every other figure of the report's metrics table, as mean (column = the results.json key) and sample sd
#: over seeds (``<key>_sd``)
MORE_SCORES = (
    "precision@10",
    "precision@50",
    "precision@100",
    "precision@1%",
    "recall@100",
    "recall@1%",
    "artefact_fraction@100",
    "artefact_fraction@1%",
)
#: ranking stability between the seeds of one system: the top-k sets compared (a count, and 1% of the objects)
STABILITY_K = (50, "1%")
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
    "weights_kind",
    "weights_origin",
    "trained_on_scored_objects",
    "held_out",
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
    *(c for key in MORE_SCORES for c in (key, f"{key}_sd")),
    *(f"jaccard@{k}_{stat}" for k in STABILITY_K for stat in ("mean", "min")),
]


def system_label(config: dict[str, Any]) -> str:
    """``model[:opts]/detector[:params]/dataset[:opts]`` (and ``/weights=W`` unless ``auto``, ``/precision=P``
    unless fp32): the full formatted specs (:func:`fmb.params.format_spec`), so that ``knn`` and
    ``knn:n_neighbors=10`` differ, and a bf16 run is never averaged with an fp32 run as another seed."""
    parts = [
        format_spec(config.get("model", "?"), config.get("model_options") or {}),
        format_spec(config.get("detector", "?"), config.get("detector_params") or {}),
        format_spec(config.get("dataset", "?"), config.get("dataset_options") or {}),
    ]
    weights = config.get("weights", "auto")
    if weights not in (None, "auto"):
        parts.append(f"weights={weights}")
    precision = config.get("precision") or "fp32"
    if precision != "fp32":
        parts.append(f"precision={precision}")
    return "/".join(parts)


def _weights_columns(facts: list[dict[str, Any]]) -> dict[str, Any]:
    """The weights columns of one row from its seeds' :func:`fmb.retrained.weights_facts`: ``weights_kind``
    (random / official / path / retrained / none) and ``weights_origin`` (e.g. ``retrained from random
    (seed 0)``), each the seeds' distinct values joined by ``; ``; ``trained_on_scored_objects``: the most
    any seed's weights were trained on (None when no seed recorded it); ``held_out``: False when above 0."""
    counts = [f["trained_on_scored_objects"] for f in facts if f["trained_on_scored_objects"] is not None]
    most = max(counts) if counts else None
    return {
        "weights_kind": "; ".join(dict.fromkeys(f["kind"] for f in facts)),
        "weights_origin": "; ".join(dict.fromkeys(f["label"] for f in facts)),
        "trained_on_scored_objects": most,
        "held_out": not most,
    }


def _seed_key(seed: Any) -> tuple[int, Any]:
    return (0, seed) if isinstance(seed, int) else (1, str(seed))


def _mean(v: list[float]) -> float:
    v = [x for x in v if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


def _sd(v: list[float]) -> float:
    import numpy as np

    v = [x for x in v if x is not None and math.isfinite(x)]
    return float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def _ranking(run_dir: str, modality: str) -> tuple[Any, Any]:
    """``(object_id, score)`` of one output of a run folder (finite scores only)."""
    import numpy as np
    import pyarrow.compute as pc

    from fmb.runs import read_run

    _, t = read_run(run_dir, columns=["object_id", "modality", "score"])
    t = t.filter(pc.equal(t.column("modality"), modality))
    s = t.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    ok = np.isfinite(s)
    return t.column("object_id").to_numpy(zero_copy_only=False)[ok], s[ok]


def seed_stability(run_dirs: list[str], modality: str, ks: tuple = STABILITY_K) -> dict[str, float]:
    """Ranking stability of one system over its seeds: for each pair of seeds (one run folder each), the
    Jaccard index |A ∩ B| / |A ∪ B| of their top-k object sets (:func:`fmb.compare.rankings.jaccard_top`,
    on the objects both scored; k a count or "1%" of those objects), summarised as
    ``{"jaccard@<k>_mean": mean over pairs, "jaccard@<k>_min": worst pair}``; NaN with fewer than 2 seeds.

    Why: Reis et al. 2019 (arXiv:1911.06823, Astronomy and Computing 34, 100437) show that small changes to
    an unsupervised method move the list of top anomalies a lot; a system whose top-k changes with the seed
    cannot be trusted to hand an astronomer the same candidates twice.
    """
    from itertools import combinations

    from fmb.compare import rankings as R

    out = {f"jaccard@{k}_{stat}": math.nan for k in ks for stat in ("mean", "min")}
    if len(run_dirs) < 2:
        return out
    ranked = [_ranking(d, modality) for d in run_dirs]
    per: dict[Any, list[float]] = {k: [] for k in ks}
    for (ia, sa), (ib, sb) in combinations(ranked, 2):
        _, S = R.align([ia, ib], [sa, sb])
        if len(S) == 0:
            continue
        for k in ks:
            per[k].append(R.jaccard_top(S[:, 0], S[:, 1], k))
    for k, vals in per.items():
        if vals:
            out[f"jaccard@{k}_mean"] = sum(vals) / len(vals)
            out[f"jaccard@{k}_min"] = min(vals)
    return out


def check_planned(run_dirs: list[str] | tuple[str, ...] | str | Path) -> None:
    """Raise UsageError (one line) when a folder given holds a run plan (every matrix folder does,
    :func:`fmb.executors.plan.missing_systems`) some of whose systems have no valid results (failed,
    refused, killed, never run), naming them."""
    from fmb.executors.plan import missing_systems

    for p in [run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs:
        missing = missing_systems(p) if Path(p).is_dir() else None
        if missing:
            raise UsageError(
                f"{str(p)!r} is incomplete: {len(missing)} planned system(s) have no valid results "
                f"({', '.join(missing)}); finish them (`fmb run` again, or see `fmb status {p}`) or rank "
                f"the finished run folders one by one"
            )


def leaderboard(run_dirs: list[str] | tuple[str, ...] | str | Path) -> pd.DataFrame:
    """The leaderboard of run folders (matrix folders are expanded, :func:`fmb.runs.expand_run_dirs`):
    a DataFrame with :data:`COLUMNS`, one row per system and scored output, sorted by the main score
    (best first; rows without labels last). ``df.attrs`` holds ``main_score`` and ``higher_is_better``.

    Raises UsageError (one line) for a folder that is not a complete run, for a matrix folder where a system
    of its plan has no valid results (:func:`check_planned`: a partial matrix must not read as the whole
    table), and for two folders holding the same system and seed (their mean and spread would count one
    seed twice).
    """
    import pandas as pd

    check_planned(run_dirs)
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
            g["seeds"][seed] = {
                "dir": str(d),
                "m": entry.get("metrics") or {},
                "w": weights_facts((res.get("model") or {}).get("weights")),
            }
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
            **_weights_columns([s["w"] for s in seeds]),
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
        for key in MORE_SCORES:
            vals = [s["m"].get(key) for s in seeds]
            row[key], row[f"{key}_sd"] = _mean(vals), _sd(vals)
        row.update(seed_stability([s["dir"] for s in seeds], mod))
        rows.append(row)
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    df["trained_on_scored_objects"] = df["trained_on_scored_objects"].astype("Int64")  # a count, empty if unknown
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


def _jaccard_cell(mean: float, low: float) -> str:
    return "-" if not math.isfinite(mean) else f"{mean:.2f} (min {low:.2f})"


def stability_cells(row: dict[str, Any]) -> list[str]:
    """``mean (min worst pair)`` of the seeds' top-k Jaccard, per :data:`STABILITY_K`, of one leaderboard row
    (a dict, ``df.to_dict("records")``: itertuples renames the columns whose names hold "@")."""
    return [_jaccard_cell(row[f"jaccard@{k}_mean"], row[f"jaccard@{k}_min"]) for k in STABILITY_K]


def leaderboard_table(df: pd.DataFrame) -> Table:
    """The leaderboard as a rich table: ``mean ± sd [ci_low, ci_high]`` per score, P@100 and R@1% as
    ``mean ± sd``, and (when a system has several seeds) the top-k Jaccard between its seeds."""
    from rich.table import Table

    direction = "higher is better" if HIGHER_IS_BETTER else "lower is better"
    t = Table(title=f"FMB leaderboard (main score: {MAIN_SCORE.upper()}, {direction})", header_style="bold")
    seeded = bool(len(df)) and int(df["n_seeds"].max()) > 1
    cols = ["#", "system", "modality", "weights", "seeds", "AUROC ± sd [95% CI]", "AP ± sd [95% CI]"]
    cols += ["P@100 ± sd", "R@1% ± sd"]
    cols += [f"seeds' top-{k} Jaccard" for k in STABILITY_K] if seeded else []
    for col in cols:
        t.add_column(col, justify="right" if col in ("#", "seeds") else "left")
    flagged = []
    for d in df.to_dict("records"):
        system = d["system"]
        if not d["held_out"]:
            system += f" {NOT_HELD_OUT}"
            flagged.append(f"#{d['rank']}: {not_held_out_note(int(d['trained_on_scored_objects']))}")
        t.add_row(
            str(d["rank"]),
            system,
            d["modality"],
            d["weights_origin"],
            str(d["n_seeds"]),
            _cell(d["auroc"], d["auroc_sd"], d["auroc_ci_low"], d["auroc_ci_high"]),
            _cell(d["ap"], d["ap_sd"], d["ap_ci_low"], d["ap_ci_high"]),
            _cell(d["precision@100"], d["precision@100_sd"], math.nan, math.nan),
            _cell(d["recall@1%"], d["recall@1%_sd"], math.nan, math.nan),
            *(stability_cells(d) if seeded else []),
        )
    t.caption = (
        "mean ± sd over seeds (sd with several seeds); [CI]: bootstrap interval over objects "
        "(mean of the seeds' bounds)"
    )
    if seeded:
        t.caption += (
            "; Jaccard: |A ∩ B| / |A ∪ B| of two seeds' top-k sets, mean over pairs of seeds (min: the worst pair)"
        )
    t.caption = "\n".join([t.caption, *flagged])
    return t
