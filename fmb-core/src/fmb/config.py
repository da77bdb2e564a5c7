"""The TOML benchmark file and its expansion into a matrix of systems.

Example::

    [benchmark]
    models = ["baseline"]
    detectors = ["iforest", "knn:n_neighbors=10"]
    datasets = ["synthetic"]
    seeds = [0, 1]
    modality = "all"          # image | spectrum | joint | all
    weights = "auto"
    device = "auto"
    batch_size = 64
    output = "fmb-results"

    [datasets.synthetic]      # options per dataset, model or detector name
    size = 500

Command-line flags override the file: a flag that is given replaces the file's list.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from fmb.errors import UsageError
from fmb.params import parse_spec
from fmb.protocol.run import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LIST_KEYS = {"models": "model", "detectors": "detector", "datasets": "dataset", "seeds": "seed"}
SCALAR_KEYS = ("modality", "weights", "device", "batch_size", "output")
DEFAULTS: dict[str, Any] = {"models": [], "detectors": [], "datasets": ["synthetic"], "seeds": [0],
                            "modality": "all", "weights": "auto", "device": "auto", "batch_size": 64,
                            "output": ""}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a benchmark file; unreadable or invalid files are a one-line error naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"config {str(path)!r}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {str(path)!r}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"benchmark", "models", "detectors", "datasets"}
    if unknown:
        raise UsageError(f"config {str(path)!r}: unknown table(s) {', '.join(sorted(unknown))} "
                         "(expected benchmark, models, detectors, datasets)")
    bench = data.get("benchmark", {})
    bad = set(bench) - set(DEFAULTS)
    if bad:
        raise UsageError(f"config {str(path)!r}: unknown key(s) in [benchmark]: {', '.join(sorted(bad))}")
    return data


def resolve(file_data: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults < file < command line (only flags actually given override)."""
    file_data = file_data or {}
    merged = {**DEFAULTS, **file_data.get("benchmark", {})}
    for key, value in overrides.items():
        if value not in (None, (), []):
            merged[key] = list(value) if isinstance(value, tuple) else value
    for key in LIST_KEYS:
        if not isinstance(merged[key], list):
            merged[key] = [merged[key]]
    merged["tables"] = {k: file_data.get(k, {}) for k in ("models", "detectors", "datasets")}
    return merged


def _named(items: list[str], table: dict[str, Any], what: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for item in items:
        name, params = parse_spec(str(item), what)
        base = table.get(name, {})
        if not isinstance(base, dict):
            raise UsageError(f"config: [{what}s.{name}] must be a table of options")
        out.append((name, {**base, **params}))
    return out


def expand(merged: dict[str, Any]) -> list[RunConfig]:
    """The matrix datasets x models x detectors x seeds as RunConfig objects."""
    if not merged["models"]:
        raise UsageError("no model given: use --model NAME (see `fmb models`)")
    if not merged["detectors"]:
        raise UsageError("no detector given: use --detector NAME (see `fmb detectors`)")
    tables = merged["tables"]
    try:
        seeds = [int(s) for s in merged["seeds"]]
        batch_size = int(merged["batch_size"])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"seeds and batch_size must be integers: {exc}") from exc
    if batch_size < 1:
        raise UsageError(f"batch_size must be positive, got {batch_size}")
    combos = itertools.product(_named(merged["datasets"], tables["datasets"], "dataset"),
                               _named(merged["models"], tables["models"], "model"),
                               _named(merged["detectors"], tables["detectors"], "detector"), seeds)
    return [RunConfig(model=m, model_options=mo, detector=d, detector_params=dp, dataset=s,
                      dataset_options=so, seed=seed, modality=merged["modality"], weights=merged["weights"],
                      device=merged["device"], batch_size=batch_size, output=str(merged["output"] or ""))
            for (s, so), (m, mo), (d, dp), seed in combos]
