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
    precision = "fp32"        # fp32 | bf16 (autocast: other numbers, another cache entry)
    output = "fmb-results"
    overwrite = false         # true: replace another system's run in the output folder

    [datasets.synthetic]      # options per dataset, model or detector name
    size = 500

Command-line flags override the file: a flag that is given replaces the file's list. Types are strict
(``seeds = [1.7]`` or ``[true]`` is an error, not 1), and an unknown key or a table naming no registered
model, detector or dataset (``[detectors.iforrest]``) is a one-line error with the closest valid name.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from fmb.errors import UsageError
from fmb.params import parse_spec
from fmb.paramschema import suggest
from fmb.protocol.run import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LIST_KEYS = {"models": "model", "detectors": "detector", "datasets": "dataset", "seeds": "seed"}
SCALAR_KEYS = ("modality", "weights", "device", "batch_size", "precision", "output", "overwrite")
TABLES = ("models", "detectors", "datasets")
DEFAULTS: dict[str, Any] = {
    "models": [],
    "detectors": [],
    "datasets": ["synthetic"],
    "seeds": [0],
    "modality": "all",
    "weights": "auto",
    "device": "auto",
    "batch_size": 64,
    "precision": "fp32",
    "output": "",
    "overwrite": False,
}
#: the type of each [benchmark] key (a list key also takes a single value)
KEY_TYPES: dict[str, type] = {
    "models": str,
    "detectors": str,
    "datasets": str,
    "seeds": int,
    "modality": str,
    "weights": str,
    "device": str,
    "batch_size": int,
    "precision": str,
    "output": str,
    "overwrite": bool,
}
_TYPE_WORDS = {str: "a string", int: "an integer", bool: "true or false"}


def _is(value: Any, typ: type) -> bool:
    """Strict TOML types: an int is not a bool, a float is never an int (``seeds = [1.7]`` is an error)."""
    return isinstance(value, typ) and (typ is bool or not isinstance(value, bool))


def _check_benchmark(where: str, bench: dict[str, Any]) -> None:
    """Every [benchmark] key is known and of the right type (one-line UsageError with a suggestion)."""
    for key, value in bench.items():
        if key not in DEFAULTS:
            raise UsageError(
                f"{where}: unknown key {key!r} in [benchmark]{suggest(key, DEFAULTS)} (valid: {', '.join(DEFAULTS)})"
            )
        typ, word = KEY_TYPES[key], _TYPE_WORDS[KEY_TYPES[key]]
        items = value if key in LIST_KEYS and isinstance(value, list) else [value]
        for item in items:
            if not _is(item, typ):
                what = f"a list of {word.split(' ', 1)[1]}s or {word}" if key in LIST_KEYS else word
                raise UsageError(f"{where}: [benchmark] {key} = {value!r}: {item!r} is not {word} (expected {what})")


def _check_tables(where: str, data: dict[str, Any]) -> None:
    """[models.NAME], [detectors.NAME], [datasets.NAME] name registered things and hold option tables."""
    from fmb.plugins import registry

    reg = registry()
    for table in TABLES:
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise UsageError(f"{where}: {table} must be a table of [{table}.NAME] option tables")
        kind = LIST_KEYS[table]
        known = reg.specs[kind]
        for name, options in section.items():
            if name not in known:
                raise UsageError(
                    f"{where}: [{table}.{name}] names no registered {kind}"
                    f"{suggest(name, known)} (registered: {', '.join(sorted(known))})"
                )
            if not isinstance(options, dict):
                raise UsageError(f"{where}: [{table}.{name}] must be a table of options, got {options!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a benchmark file and check it: unknown tables, keys and names, and wrong types, are a
    one-line UsageError naming the file (with the closest valid name where one is close)."""
    path = Path(path)
    where = f"config {str(path)!r}"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: invalid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"benchmark", *TABLES})
    if unknown:
        raise UsageError(
            f"{where}: unknown table(s) {', '.join(unknown)}{suggest(unknown[0], ['benchmark', *TABLES])}"
            " (expected benchmark, models, detectors, datasets)"
        )
    bench = data.get("benchmark", {})
    if not isinstance(bench, dict):
        raise UsageError(f"{where}: benchmark must be a table ([benchmark])")
    _check_benchmark(where, bench)
    _check_tables(where, data)
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
    merged["tables"] = {k: file_data.get(k, {}) for k in TABLES}
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
    _check_benchmark("config", {k: merged[k] for k in KEY_TYPES})
    seeds, batch_size = list(merged["seeds"]), merged["batch_size"]
    if batch_size < 1:
        raise UsageError(f"batch_size must be positive, got {batch_size}")
    from fmb.protocol.accel import check_precision

    check_precision(merged["precision"])
    combos = itertools.product(
        _named(merged["datasets"], tables["datasets"], "dataset"),
        _named(merged["models"], tables["models"], "model"),
        _named(merged["detectors"], tables["detectors"], "detector"),
        seeds,
    )
    return [
        RunConfig(
            model=m,
            model_options=mo,
            detector=d,
            detector_params=dp,
            dataset=s,
            dataset_options=so,
            seed=seed,
            modality=merged["modality"],
            weights=merged["weights"],
            device=merged["device"],
            batch_size=batch_size,
            precision=merged["precision"],
            output=merged["output"] or "",
            overwrite=bool(merged["overwrite"]),
        )
        for (s, so), (m, mo), (d, dp), seed in combos
    ]
