"""``fmb compare``: pairwise agreement of systems on their common objects, with bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from fmb.compare.runs import Aligned
from fmb.compare.stats import bootstrap_ci, check_aligned, disagreement, pair_stats
from fmb.io import write_json, write_parquet
from fmb.protocol.metrics import ranks, resolve_k

MATRICES = ("spearman", "jaccard_top1pct", "retention_top1_top1", "retention_top1_top10")


@dataclass
class Comparison:
    """Everything ``fmb compare`` computes."""

    aligned: Aligned
    top_k: int
    pairs: list[dict[str, Any]] = field(default_factory=list)
    disagreements: pa.Table | None = None

    def matrix(self, stat: str) -> np.ndarray:
        names = self.aligned.names
        M = np.eye(len(names))
        for p in self.pairs:
            M[names.index(p["source"]), names.index(p["target"])] = p[stat]
        return M


def compare(aligned: Aligned, top_k: int = 100, n_boot: int = 200, seed: int = 0) -> Comparison:
    """All ordered pairs of systems: statistics, bootstrap 95% intervals, disagreement sets."""
    S = aligned.scores
    check_aligned(S)
    n, m = S.shape
    k = min(top_k, n)
    out = Comparison(aligned, k)
    dis: dict[str, list] = {
        c: []
        for c in ("source", "target", "object_id", "rank_source", "rank_target", "percentile_target", "beyond_median")
    }
    R = np.column_stack([ranks(S[:, j]) for j in range(m)])
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            a, b = S[:, i], S[:, j]
            row: dict[str, Any] = {
                "source": aligned.names[i],
                "target": aligned.names[j],
                "n_objects": n,
                **pair_stats(a, b, k),
            }
            ci = bootstrap_ci(lambda idx, a=a, b=b: pair_stats(a[idx], b[idx], k), n, n_boot, seed)
            for key, (lo, hi) in ci.items():
                row[f"{key}_lo"], row[f"{key}_hi"] = lo, hi
            out.pairs.append(row)
            idx = disagreement(a, b, k)
            dis["source"] += [aligned.names[i]] * len(idx)
            dis["target"] += [aligned.names[j]] * len(idx)
            dis["object_id"] += aligned.object_id[idx].tolist()
            dis["rank_source"] += R[idx, i].tolist()
            dis["rank_target"] += R[idx, j].tolist()
            dis["percentile_target"] += (R[idx, j] / n).tolist()
            dis["beyond_median"] += (R[idx, j] / n > 0.5).tolist()
    out.disagreements = pa.table(dis)
    return out


def _matrix_table(c: Comparison, stat: str) -> pa.Table:
    M = c.matrix(stat)
    return pa.table({"system": c.aligned.names, **{n: M[:, j] for j, n in enumerate(c.aligned.names)}})


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not np.isfinite(v) else v


def write(c: Comparison, out: Path, runs: list[str]) -> list[Path]:
    """pairs, matrices and disagreements as Parquet + CSV, and summary.json, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    systems = pa.table({"system": c.aligned.names, "n_dropped": [c.aligned.dropped[s] for s in c.aligned.names]})
    tables = {
        "systems": systems,
        "pairs": pa.Table.from_pylist(c.pairs),
        "disagreements": c.disagreements,
        **{f"matrix_{s}": _matrix_table(c, s) for s in (*MATRICES, f"jaccard_top{c.top_k}")},
    }
    for name, t in tables.items():
        write_parquet(t, out / f"{name}.parquet")
        pacsv.write_csv(t, out / f"{name}.csv")
        written += [out / f"{name}.parquet", out / f"{name}.csv"]
    n = len(c.aligned.object_id)
    summary = {
        "runs": runs,
        "systems": c.aligned.names,
        "n_common_objects": n,
        "dropped": c.aligned.dropped,
        "top_k": c.top_k,
        "top_1pct": resolve_k("1%", n),
        "top_10pct": resolve_k("10%", n),
        "pairs": [{k: _finite(v) for k, v in p.items()} for p in c.pairs],
    }
    write_json(summary, out / "summary.json")
    return [*written, out / "summary.json"]
