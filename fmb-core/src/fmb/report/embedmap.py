"""2-D maps of a run's embeddings (UMAP where umap-learn is installed, else PCA), from the cache."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.report.collect import Run
from fmb.threads import limited

METHODS = ("auto", "pca", "umap")
#: below this many objects "auto" uses PCA: UMAP's start-up costs more than it shows on a handful of points
UMAP_MIN_OBJECTS = 500


class UnavailableError(Exception):
    """A report part that cannot be drawn; the message says why (shown on the page)."""


def cache_path(run: Run) -> Path:
    """The run's embedding cache folder: results.json's embedding.path, else FMB_HOME/embeddings/<model>/<key>."""
    emb = run.result.get("embedding") or {}
    if emb.get("path"):
        return Path(emb["path"])
    from fmb.home import fmb_home

    model = (run.result.get("model") or {}).get("name") or run.result.get("config", {}).get("model", "?")
    return fmb_home() / "embeddings" / model / str(emb.get("cache_key", "?"))


def read_embeddings(run: Run) -> pa.Table:
    """The cached embedding table of a run; UnavailableError when the cache is gone or incomplete."""
    from fmb.protocol.embed import read_verified

    path = cache_path(run)
    if not (path / "manifest.json").is_file():
        raise UnavailableError(f"the embedding cache {path} is gone (re-run the same `fmb run` to rebuild it)")
    table, why = read_verified(path)
    if table is None:
        raise UnavailableError(f"{why} (re-run the same `fmb run` to rebuild it)")
    return table


def outputs_of(run: Run, table: pa.Table) -> list[str]:
    """Embedding columns to map: the run's modalities (a multi-input "a+b" maps a and b)."""
    wanted = [p for m in run.result.get("modalities", {}) for p in m.split("+")]
    return [o for o in dict.fromkeys(wanted) if o in table.column_names]


def pca(X: np.ndarray, k: int = 2, seed: int = 0, n_iter: int = 6) -> np.ndarray:
    """Projection of the centred X on its first k principal axes (seeded randomized subspace iteration,
    fast for wide embeddings); each axis's sign makes its largest loading positive."""
    Xc = X - X.mean(axis=0)
    k = min(k, *Xc.shape)
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(Xc.T @ (Xc @ rng.standard_normal((Xc.shape[1], k + 10))))[0]
    for _ in range(n_iter):
        Q = np.linalg.qr(Xc.T @ (Xc @ Q))[0]
    _, _, vt = np.linalg.svd(Xc @ Q, full_matrices=False)
    axes = (Q @ vt.T)[:, :k]
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    return Xc @ axes


def umap_available() -> bool:
    try:
        metadata.version("umap-learn")
    except metadata.PackageNotFoundError:
        return False
    return True


def resolve_method(method: str, n: int) -> str:
    if method not in METHODS:
        raise ValueError(f"embedding map must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "umap" if umap_available() and n >= UMAP_MIN_OBJECTS else "pca"
    if method == "umap":
        from fmb import extras

        extras.require("umap", "--embedding-map umap")
    return method


def project(X: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """[N, 2] coordinates of the finite rows of X (NaN rows stay NaN)."""
    ok = np.isfinite(X).all(axis=1)
    xy = np.full((len(X), 2), np.nan)
    if ok.sum() < 3:
        return xy
    with limited():  # BLAS/OpenMP (PCA, UMAP's numba aside) at --threads / FMB_THREADS (fmb.threads)
        xy[ok] = _project(X[ok].astype(np.float64), method, seed)
    return xy


def _project(Xf: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "umap":
        import warnings

        import umap

        if Xf.shape[1] > 50:  # PCA to 50 dimensions first: faster, and the usual practice
            Xf = pca(Xf, 50, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return umap.UMAP(
                n_components=2, n_neighbors=min(15, len(Xf) - 1), random_state=seed, n_jobs=1
            ).fit_transform(Xf)
    p = pca(Xf, 2, seed)
    return p if p.shape[1] == 2 else np.column_stack([p, np.zeros(len(p))])


#: bump when :func:`project` changes what it computes: every cached map is then recomputed
MAP_VERSION = 1
MAPS_DIR = "maps"


def map_params(method: str, seed: int, n: int) -> dict[str, Any]:
    """Everything besides the input matrix that determines :func:`project`'s output (part of the map's key)."""
    params: dict[str, Any] = {"version": MAP_VERSION, "method": method, "seed": int(seed)}
    if method == "umap":
        params.update(
            umap_learn=metadata.version("umap-learn"), n_neighbors=min(15, max(n - 1, 1)), pca_first=50, n_jobs=1
        )
    else:
        params.update(pca_iterations=6)
    return params


def content_hash(X: np.ndarray, ids: np.ndarray) -> str:
    """sha256 (hashlib: a kept, stable hash) of the object ids in order and of the matrix's float32 bytes and
    shape: the exact input of a map, so that a cached map is used only for the very same numbers."""
    h = hashlib.sha256()
    h.update(repr(np.shape(X)).encode())
    h.update("\0".join(map(str, np.asarray(ids).tolist())).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return h.hexdigest()


def map_file(cache_key: str | None, output: str, params: dict[str, Any]) -> Path:
    """FMB_HOME/maps/<embedding cache key>/<output>-<hash of the parameters>.npz"""
    from fmb.home import fmb_home

    tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in output)
    return fmb_home() / MAPS_DIR / str(cache_key or "no-cache-key") / f"{safe}-{tag}.npz"


def project_cached(
    X: np.ndarray, ids: np.ndarray, method: str, seed: int = 0, cache_key: str | None = None, output: str = ""
) -> tuple[np.ndarray, bool]:
    """:func:`project` of X [N, D] (rows = ``ids``), read from the map cache when an earlier report made the
    same map: ``(xy [N, 2], reused)``.

    The file is found by the embedding cache key, the output and :func:`map_params` (method, its parameters,
    seed, umap-learn version, :data:`MAP_VERSION`); it is used only when its stored :func:`content_hash` equals
    that of this X and these ids (a stale or foreign map is recomputed and overwritten, never shown). A cache
    that cannot be read or written is ignored (the map is computed).
    """
    params = map_params(method, seed, int(np.isfinite(X).all(axis=1).sum()))
    path = map_file(cache_key, output, params)
    digest = content_hash(X, ids)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["content"]) == digest and str(z["params"]) == json.dumps(params, sort_keys=True):
                xy = np.asarray(z["xy"], dtype=np.float64)
                if xy.shape == (len(X), 2):
                    return xy, True
    except (OSError, KeyError, ValueError):  # absent, unreadable or foreign: compute it
        pass
    xy = project(X, method, seed)
    try:
        from fmb.io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, xy=xy, content=np.array(digest), params=np.array(json.dumps(params, sort_keys=True)))
    except OSError:  # a cache that cannot be written (OutputError is one) only costs time next report
        pass
    return xy, False


def method_label(method: str, seed: int) -> str:
    if method == "umap":
        return f"UMAP (umap-learn {metadata.version('umap-learn')}, 15 neighbours, seed {seed})"
    return "PCA (first two principal components of the centred embeddings)"


def map_colours(run: Run, table: pa.Table) -> dict[str, tuple[str, Any]]:
    """Colourings of the map: anomaly class and redshift where the cache carries them; without either,
    the anomaly score (a dict: output -> values, each map coloured by its own ranking)."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    names = table.column_names
    if C.IS_ANOMALY in names:  # resolved once: null is_anomaly -> "unlabelled", flagged without class -> "unknown"
        labelled, y, cls = C.resolve_labels(
            table.column(C.IS_ANOMALY), table.column(C.ANOMALY_CLASS) if C.ANOMALY_CLASS in names else None
        )
        if cls is None:
            cls = np.where(y, "anomaly", C.NORMAL_CLASS)
        out["anomaly class"] = ("class", np.where(labelled, cls, C.UNLABELLED_CLASS).astype(str))
    elif C.ANOMALY_CLASS in names:
        out["anomaly class"] = ("class", table.column(C.ANOMALY_CLASS).to_numpy(zero_copy_only=False).astype(str))
    if "redshift" in names:
        out["redshift z"] = ("redshift", table.column("redshift").to_numpy(zero_copy_only=False).astype(np.float64))
    if not out and run.rankings:  # no truth at all: colour each output's map by that output's score
        ids = table.column(C.OBJECT_ID).to_numpy(zero_copy_only=False).tolist()
        per: dict[str, np.ndarray] = {}
        for rk in run.rankings:
            pos = {v: i for i, v in enumerate(rk.object_id.tolist())}
            vals = np.array([rk.score[pos[i]] if i in pos else np.nan for i in ids])
            for part in rk.modality.split("+"):
                per.setdefault(part, vals)
        out["anomaly score"] = ("score", per)
    return out
