"""A run folder as one unit: how it is written, refused and read.

A run folder holds ``results.json`` and ``scores.parquet`` (and, from ``fmb report``, ``report.html``
and ``figures/``). Writing is ordered so that a partial write never looks complete:

1. before any work, :func:`check_run_dir` refuses a folder holding *another* system's run unless
   ``overwrite`` (so results never silently replace, or sit beside, someone else's);
2. at the end, :func:`write_run` removes the old ``results.json``, report and figures, writes
   ``scores.parquet`` carrying a fresh run id in its schema metadata, and writes ``results.json``
   (with the same ``run_id``) last: ``results.json`` is the commit;
3. every reader goes through :func:`read_run` / :func:`read_results`, which refuse a folder whose
   ``results.json`` is missing or whose two files carry different run ids (one line, UsageError).

Writes are atomic (:mod:`fmb.io`); a full disk or a missing permission is a one-line
:class:`~fmb.errors.OutputError` naming the path.

The schema of ``results.json`` is typed here (:class:`Results` and the TypedDicts it is made of), shipped
as a JSON Schema (``fmb/schemas/results.schema.json``, :func:`json_schema`) and documented field by field
in docs/results.md. A reader refuses a ``schema_version`` newer than :data:`SCHEMA_VERSION` (one line).

A *matrix folder* (``fmb run`` with several systems) holds one run folder per system, the run plan and
the leaderboard; every command that takes run folders expands it with :func:`expand_run_dirs`.
"""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq

from fmb.errors import OutputError, UsageError
from fmb.io import output_error, write_json, write_parquet

#: version of the results.json schema written now; readers accept this one and older ones
SCHEMA_VERSION = 2
RESULTS = "results.json"
SCORES = "scores.parquet"
REPORT = "report.html"
FIGURES = "figures"
#: key of the run id in scores.parquet's schema metadata (equal to results.json's ``run_id``)
RUN_ID_KEY = b"fmb.run_id"
#: the configuration keys that make two runs the same system (device, batch size, output do not; the
#: embedding precision does: bf16 autocast gives other numbers)
SYSTEM_KEYS = (
    "model",
    "model_options",
    "detector",
    "detector_params",
    "dataset",
    "dataset_options",
    "modality",
    "weights",
    "precision",
    "seed",
)
#: values of system keys that runs written before the key existed lack (so an old fp32 run is still the same system)
SYSTEM_KEY_DEFAULTS = {"precision": "fp32"}


class Metrics(TypedDict, total=False):
    """``modalities[output]["metrics"]``: label metrics of one output (docs/metrics.md), None when undefined."""

    n_objects: int
    n_unlabelled: int
    n_anomalies: int
    auroc: float | None
    average_precision: float | None
    #: bootstrap confidence interval ``[lo, hi]`` and standard error (schema 2)
    auroc_ci: list[float] | None
    auroc_stderr: float | None
    average_precision_ci: list[float] | None
    average_precision_stderr: float | None
    bootstrap_resamples: int
    bootstrap_confidence: float
    per_class: dict[str, dict[str, Any]]
    # precision@k / recall@k for k in 10, 50, 100, 1% are keys with "@" (not identifiers)


class ModalityEntry(TypedDict, total=False):
    """``modalities[output]``: one scored output."""

    n_scored: int
    n_missing: int
    n_duplicate_rows: int | dict[str, int]
    deduplicated: bool
    detect_seconds: float
    inputs: list[str]
    details: dict[str, Any]
    components: dict[str, Any]
    metrics: Metrics | None


class ShardRecord(TypedDict, total=False):
    """``embedding.shards[i]``: how one cache shard was embedded (None where an older cache lacks it)."""

    index: int
    rows: list[int]
    seconds: float | None
    device: str | None
    host: str | None
    finished: str | None


class Embedding(TypedDict, total=False):
    cache_key: str
    reused: bool
    shards_built: int
    shards_reused: int
    shards_rebuilt: list[int]
    seconds: float
    shards: list[ShardRecord]
    key_ingredients: dict[str, Any]


class Provenance(TypedDict, total=False):
    """When, where and what (schema 2; :func:`fmb.protocol.environment.provenance`)."""

    started: str
    finished: str
    hostname: str
    command: list[str]
    git_revision: str | None
    gpu: dict[str, Any] | None
    model_libraries: dict[str, str | None]


class Results(TypedDict, total=False):
    """The whole ``results.json`` (written by :func:`fmb.protocol.run.run_system` through :func:`write_run`)."""

    schema_version: int
    run_id: str
    fmb_version: str
    plugins: dict[str, str]
    config: dict[str, Any]
    environment: dict[str, Any]
    provenance: Provenance
    dataset: dict[str, Any]
    model: dict[str, Any]
    domain_warnings: list[str]
    detector: dict[str, Any]
    embedding: Embedding
    modalities: dict[str, ModalityEntry]
    failed_outputs: dict[str, str]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``results.json`` shipped in the package."""
    from importlib.resources import files

    return json.loads(files("fmb").joinpath("schemas", "results.schema.json").read_text())


def validate_results(result: dict[str, Any], where: str = RESULTS) -> None:
    """Check ``result`` against the shipped JSON Schema (``jsonschema``, Draft 2020-12, a kept library rather
    than hand-written checks). UsageError (one line) naming ``where``, the field's path and the reason."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is not None:
        field = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise UsageError(f"{where} does not follow the results.json schema at {field}: {error.message}".splitlines()[0])


def system_of(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's ``config`` that identifies its system (see :data:`SYSTEM_KEYS`)."""
    return {k: config.get(k, SYSTEM_KEY_DEFAULTS.get(k)) for k in SYSTEM_KEYS}


def _describe(config: dict[str, Any]) -> str:
    return f"{config.get('model')} x {config.get('detector')} on {config.get('dataset')} seed {config.get('seed')}"


def check_output_dir(path: Path) -> None:
    """Create the output folder and make sure it is writable, before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".fmb-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output directory {str(path)!r} is not writable: {exc.strerror or exc}") from exc


def check_run_dir(path: str | Path, config: dict[str, Any], overwrite: bool = False) -> None:
    """Before any work: the folder is writable and does not hold another system's complete run
    (unless ``overwrite``). A folder whose ``results.json`` is missing or unreadable holds no complete
    run (an interrupted write) and may be reused. Raises UsageError / OutputError (one line)."""
    path = Path(path)
    check_output_dir(path)
    try:
        old = json.loads((path / RESULTS).read_text())
    except (OSError, ValueError):
        return
    old_cfg = old.get("config", {}) if isinstance(old, dict) else {}
    if not overwrite and system_of(old_cfg) != system_of(config):
        raise UsageError(
            f"output folder {str(path)!r} holds another system's run ({_describe(old_cfg)}); "
            "use --overwrite to replace it (its report and figures are removed too), "
            "or choose another --output"
        )


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from exc


def write_run(path: str | Path, result: Results, scores: pa.Table) -> Results:
    """Write one run: clear the old ``results.json``, report and figures, then ``scores.parquet``, then
    ``results.json`` (the commit). Both carry a new ``run_id``; returns ``result`` with it."""
    path = Path(path)
    run_id = uuid.uuid4().hex
    result = {**result, "run_id": run_id}
    for name in (RESULTS, REPORT, FIGURES):  # results.json first: from here the folder is incomplete
        _remove(path / name)
    meta = {**(scores.schema.metadata or {}), RUN_ID_KEY: run_id.encode()}
    write_parquet(scores.replace_schema_metadata(meta), path / SCORES)
    write_json(result, path / RESULTS)
    return result


def _not_a_run(path: Path, why: str) -> UsageError:
    return UsageError(f"{str(path)!r} is not an fmb run folder (a complete results.json + scores.parquet): {why}")


def read_results(path: str | Path) -> Results:
    """``results.json`` of a complete run folder, after checking that ``scores.parquet`` belongs to
    the same run (its metadata only is read). UsageError (one line) otherwise."""
    path = Path(path)
    result = _load_results(path)
    try:
        meta = pq.read_schema(path / SCORES).metadata or {}
    except (OSError, ValueError) as exc:
        raise _not_a_run(path, f"cannot read {SCORES} ({getattr(exc, 'strerror', None) or exc})") from exc
    _check_pair(path, result, meta)
    return result


def read_run(path: str | Path, columns: list[str] | None = None) -> tuple[Results, pa.Table]:
    """``results.json`` and ``scores.parquet`` (optionally only ``columns``) of a complete run folder
    whose two files belong to the same run. UsageError (one line) naming the folder otherwise."""
    path = Path(path)
    result = _load_results(path)
    try:
        meta = pq.read_schema(path / SCORES).metadata or {}
        table = pq.read_table(path / SCORES, columns=columns)
    except (OSError, ValueError, KeyError) as exc:
        raise _not_a_run(path, f"cannot read {SCORES} ({getattr(exc, 'strerror', None) or exc})") from exc
    _check_pair(path, result, meta)
    return result, table


def _load_results(path: Path) -> Results:
    if not (path / RESULTS).exists():
        why = (
            f"{RESULTS} is missing beside {SCORES} (a write was interrupted; run it again)"
            if (path / SCORES).exists()
            else f"no {RESULTS}"
        )
        raise _not_a_run(path, why)
    try:
        result = json.loads((path / RESULTS).read_text())
    except (OSError, ValueError) as exc:
        raise _not_a_run(path, f"cannot read {RESULTS} ({getattr(exc, 'strerror', None) or exc})") from exc
    if not isinstance(result, dict):
        raise _not_a_run(path, f"{RESULTS} is not a JSON object")
    version = result.get("schema_version")  # absent: a hand-made folder, read as the oldest version
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise _not_a_run(path, f"{RESULTS} has schema_version {version!r}, not an integer")
    if version is not None and version > SCHEMA_VERSION:
        raise UsageError(
            f"{str(path / RESULTS)!r} has schema_version {version}, newer than this FMB reads "
            f"({SCHEMA_VERSION}): upgrade fmb-core (pip install -U fmb-core)"
        )
    return result  # type: ignore[return-value]


def _check_pair(path: Path, result: dict[str, Any], meta: dict[bytes, bytes]) -> None:
    """Both files carry the same run id (folders written before run ids existed carry none at all)."""
    rid, sid = result.get("run_id"), meta.get(RUN_ID_KEY, b"").decode() or None
    if rid != sid:
        raise UsageError(
            f"{str(path)!r}: {SCORES} (run {sid or 'unknown'}) and {RESULTS} (run {rid or 'unknown'}) "
            "come from different runs (an interrupted write?); run it again"
        )


def is_run_dir(path: Path) -> bool:
    """A folder holding (part of) one system's run: ``results.json`` or ``scores.parquet``."""
    return (path / RESULTS).is_file() or (path / SCORES).is_file()


def planned_systems(matrix: Path, found: list[Path]) -> list[Path]:
    """The run folders ``found`` in the matrix folder ``matrix`` that its plan (``fmb-run.json``, written by the
    last ``fmb run`` into it) asked for; all of ``found`` when it has no plan. A system folder left by an earlier
    run into the same folder with other systems is left out with a one-line warning: the matrix's table is the
    last command's systems, not a mix of two commands."""
    from fmb.executors.plan import PLAN_FILE, RunPlan

    if not (matrix / PLAN_FILE).is_file():
        return found
    names = {Path(d.out_dir).name for d in RunPlan.load(matrix).detect}  # by name: the folder may have moved
    stale = [f.name for f in found if f.name not in names]
    if stale:
        warnings.warn(
            f"{matrix}: left out {len(stale)} system folder(s) not in its plan (from an earlier fmb run into it): "
            + ", ".join(stale),
            stacklevel=3,
        )
    return [f for f in found if f.name in names]


def expand_run_dirs(paths: list[str] | tuple[str, ...] | str | Path) -> list[Path]:
    """Run folders from the folders given: a run folder stands for itself, a *matrix folder* (``fmb run``
    with several systems: no results of its own, one run folder per system inside) for its systems, in
    name order; files and other folders beside the systems (the plan, progress/, slurm/, the
    leaderboard) are ignored, also when given one by one (``runs/x/*``). The same folder given twice counts
    once. UsageError (one line) naming a folder that is neither, or when nothing is left."""
    from fmb.executors.plan import PLAN_FILE  # the owners of these files name them
    from fmb.leaderboard import CSV, PARQUET

    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    out: list[Path] = []
    for p in map(Path, paths):
        beside_systems = (p.parent / PLAN_FILE).exists() or any((p.parent / name).exists() for name in (CSV, PARQUET))
        if (
            beside_systems
            and len(paths) > 1
            and (p.is_file() or (p.is_dir() and not is_run_dir(p) and not any(map(is_run_dir, p.iterdir()))))
        ):
            continue  # `fmb compare runs/x/*`: the plan, progress/, slurm/, the leaderboard beside the systems
        if not p.is_dir():
            raise _not_a_run(p, "no such folder (expected a run folder or a matrix folder)")
        if is_run_dir(p):
            found = [p]
        else:
            found = planned_systems(p, sorted(c for c in p.iterdir() if c.is_dir() and is_run_dir(c)))
            if not found:
                raise _not_a_run(p, f"no {RESULTS} in it nor in any folder inside it (not a matrix folder either)")
        out += [f for f in found if f.resolve() not in {o.resolve() for o in out}]
    if not out:
        raise UsageError(f"no run folder among {', '.join(map(str, paths))}")
    return out
