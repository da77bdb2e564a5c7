"""Embeddings of a run (from the cache, by results.json's embedding.cache_key) or of a model x dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from fmb import runs
from fmb.home import fmb_home


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """results.json of a complete run folder (:func:`fmb.runs.read_results`)."""
    return runs.read_results(run_dir)


def read_cache(model: str, key: str) -> pa.Table | None:
    """The cached embedding table, or None when the entry is missing, incomplete or fails its hashes."""
    from fmb.protocol.embed import read_verified

    return read_verified(fmb_home() / "embeddings" / model / key)[0]


def embed_table(
    model: str,
    dataset: str,
    model_options: dict | None = None,
    dataset_options: dict | None = None,
    weights: str = "auto",
    device: str = "auto",
    batch_size: int = 64,
    seed: int = 0,
) -> pa.Table:
    """Embed (or reuse the cache of) ``model`` on ``dataset``."""
    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.protocol.environment import resolve_device
    from fmb.protocol.run import RunConfig, load_model, open_dataset

    reg = registry()
    cfg = RunConfig(
        model=model,
        detector="none",
        dataset=dataset,
        model_options=dict(model_options or {}),
        dataset_options=dict(dataset_options or {}),
        weights=weights,
        device=device,
        batch_size=batch_size,
        seed=seed,
    )
    ds = open_dataset(reg, dataset, cfg.dataset_options)
    m = load_model(reg, cfg, resolve_device(device))
    return embed_dataset(m, ds, batch_size=batch_size).table


def run_embeddings(run_dir: str | Path) -> tuple[dict[str, Any], pa.Table]:
    """results.json and the embedding table of a run (re-embedding only when the cache is gone)."""
    res = read_results(run_dir)
    model = res["model"]["name"]
    table = read_cache(model, res["embedding"]["cache_key"])
    if table is None:
        c = res["config"]
        table = embed_table(
            model,
            c["dataset"],
            c.get("model_options"),
            c.get("dataset_options"),
            c.get("weights", "auto"),
            c.get("device", "auto"),
            c.get("batch_size", 64),
            c.get("seed", 0),
        )
    return res, table
