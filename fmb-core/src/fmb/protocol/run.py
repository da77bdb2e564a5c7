"""The benchmark protocol for one system: embed -> detect -> score -> write results."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb import __version__
from fmb.adapt import domain_warnings
from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.detectors.base import Detector, MultiInputDetector, duplicate_rows
from fmb.errors import DetectorError, FMBError, UsageError
from fmb.models.base import Model
from fmb.params import format_spec
from fmb.plugins import Registry, plugin_info
from fmb.protocol.embed import EmbedResult, cached_model, embed_dataset, model_options, read_cached
from fmb.protocol.environment import environment, provenance, resolve_device, utc_now
from fmb.protocol.metrics import artefact_fraction, bootstrap_intervals, compute_metrics, ranks
from fmb.protocol.nuisance import nuisance_correlations, variables_for
from fmb.protocol.weights import parse_weights
from fmb.reporting import Reporter
from fmb.retrained import overlap_sources, training_overlap
from fmb.runs import SCHEMA_VERSION, check_run_dir, write_run

MODALITY_CHOICES = ("image", "spectrum", "joint", "all")


@dataclass
class RunConfig:
    """One system of the benchmark matrix, fully resolved."""

    model: str
    detector: str
    dataset: str = "synthetic"
    model_options: dict[str, Any] = field(default_factory=dict)
    detector_params: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    modality: str = "all"
    weights: str = "auto"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    #: numeric precision of the forward passes: fp32 | bf16 (see fmb.protocol.accel)
    precision: str = "fp32"
    output: str = ""
    #: replace a run of another system in the output folder (not part of the recorded configuration)
    overwrite: bool = False

    @property
    def label(self) -> str:
        """A readable, file-system-safe name for this system."""
        parts = [
            format_spec(self.model, self.model_options),
            format_spec(self.detector, self.detector_params),
            format_spec(self.dataset, self.dataset_options),
            f"seed{self.seed}",
            *([self.precision] if self.precision != "fp32" else []),  # bf16 numbers differ: their own folder
        ]
        safe = "__".join(parts)
        return "".join(ch if ch.isalnum() or ch in "._-=" else "-" for ch in safe)

    def to_dict(self) -> dict[str, Any]:
        """The configuration recorded in results.json (without ``overwrite``)."""
        d = asdict(self)
        d.pop("overwrite")
        return d


def check_dataset_options(reg: Registry, name: str, options: dict[str, Any]) -> None:
    """See :meth:`fmb.plugins.Registry.check_dataset_options`."""
    reg.check_dataset_options(name, options)


def check_config(reg: Registry, cfg: RunConfig) -> Detector:
    """Everything about one system that can be checked without reading data or loading a model:
    names, modality, weights, dataset option names and every detector parameter (type and range).
    Returns the detector. A multi-input detector is also checked against the model's declared spec (its
    inputs among the spec's outputs, :meth:`~fmb.detectors.base.MultiInputDetector.check_model`), so that
    every system of a matrix is refused before any of them embeds. Raises a one-line UsageError (or
    DetectorError)."""
    reg.model(cfg.model), reg.dataset(cfg.dataset)
    if cfg.modality not in MODALITY_CHOICES:
        raise UsageError(f"unknown modality {cfg.modality!r} (expected one of {', '.join(MODALITY_CHOICES)})")
    parse_weights(cfg.weights)
    check_dataset_options(reg, cfg.dataset, cfg.dataset_options)
    detector = make_detector(reg, cfg.detector, cfg.detector_params)
    if isinstance(detector, MultiInputDetector):  # refusals known from the model's spec: before any system runs
        spec = reg.model(cfg.model)
        missing = [i for i in multi_inputs(detector) if i not in spec.outputs]
        if missing:
            raise UsageError(
                f"detector {detector.name!r} needs the {', '.join(multi_inputs(detector))} embeddings; model "
                f"{spec.name!r} has no {', '.join(missing)} output"
            )
        detector.check_model(spec)
    return detector


def open_dataset(reg: Registry, name: str, options: dict[str, Any], check_ids: bool = True) -> Dataset:
    """Open a registered data set (:meth:`~fmb.plugins.Registry.load_dataset`); every path (run, shards,
    embed --shard, detect, executors, Slurm tasks) comes through here, so every path refuses duplicate
    ids across the whole data set."""
    from fmb.data.validate import check_unique_ids

    ds = reg.load_dataset(name, options)
    if check_ids:
        check_unique_ids(ds)
    return ds


def load_model(reg: Registry, cfg: RunConfig, device: str) -> Model:
    """The model of ``cfg`` (:meth:`fmb.plugins.Registry.load_model`, which records the resolved options)."""
    return reg.load_model(cfg.model, weights=cfg.weights, device=device, options=cfg.model_options, seed=cfg.seed)


def make_detector(reg: Registry, name: str, params: dict[str, Any]) -> Detector:
    return reg.make_detector(name, params)


def output_usable(output: str, model: Model, have: set[str]) -> bool:
    """Whether the dataset's modalities ``have`` feed the model's ``output``: the modality of the same name,
    or for ``joint`` every modality the model reads (the one rule of select_outputs and select_multi)."""
    if output not in model.outputs:
        return False
    return set(model.spec.modalities) <= have if output == "joint" else output in have


def select_outputs(model: Model, dataset: Dataset, modality: str) -> list[str]:
    """Model outputs to score: those whose inputs the dataset has, or the one asked for."""
    if modality not in MODALITY_CHOICES:
        raise UsageError(f"unknown modality {modality!r} (expected one of {', '.join(MODALITY_CHOICES)})")
    have = set(dataset.modalities)
    usable = [o for o in model.outputs if output_usable(o, model, have)]
    if modality == "all":
        if not usable:
            raise UsageError(
                f"model {model.spec.name!r} needs {'/'.join(model.spec.modalities)} but dataset "
                f"{dataset.name!r} has only {'/'.join(sorted(have)) or 'nothing'}"
            )
        return usable
    if modality not in usable:
        raise UsageError(
            f"model {model.spec.name!r} on dataset {dataset.name!r} has no {modality!r} output "
            f"(available: {', '.join(usable) or 'none'})"
        )
    return [modality]


def canonical_order(table: pa.Table) -> np.ndarray:
    """``[N]`` row indices that sort ``table`` by ``object_id`` (the canonical order).

    Detectors are fitted on rows in this order, so that a seeded detector (iforest's subsamples,
    nf's folds) gives every object the same score whatever the order of the input rows or files.
    """
    ids = table.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
    return np.argsort(ids, kind="stable")


def detect(detector: Detector, emb: EmbedResult, output: str, seed: int) -> tuple[np.ndarray, dict]:
    """Scores for every object (NaN where the modality is missing) and bookkeeping.

    The detector sees the rows sorted by ``object_id`` (:func:`canonical_order`); ``n_duplicate_rows``
    counts rows that repeat an earlier embedding exactly.
    """
    X = emb.matrix(output)
    valid = np.isfinite(X).all(axis=1)
    if valid.sum() < 2:
        raise DetectorError(
            f"output {output!r}: fewer than 2 objects have this modality "
            f"({int(valid.sum())} of {len(X)} have a finite embedding)"
        )
    order = canonical_order(emb.table)
    idx = order[valid[order]]
    t0 = time.perf_counter()
    scores = np.full(len(X), np.nan)
    Xi = X[idx]  # one copy in canonical order (a million x 256 float32 is 1 GB)
    scores[idx] = detector.fit_score(Xi, seed=seed)
    if not np.isfinite(scores[valid]).all():
        raise DetectorError(f"detector {detector.name!r} returned non-finite scores on {output!r}")
    details = dict(getattr(detector, "details_", {}))  # e.g. knn/lof's approximate graph and its recall
    return scores, {
        "n_scored": int(valid.sum()),
        "n_missing": int((~valid).sum()),
        "n_duplicate_rows": duplicate_rows(Xi),
        "detect_seconds": round(time.perf_counter() - t0, 4),
        **({"details": details} if details else {}),
    }


def multi_inputs(detector: Detector) -> tuple[str, ...]:
    """The embeddings a detector scores together (empty for one-matrix detectors)."""
    return tuple(detector.inputs) if isinstance(detector, MultiInputDetector) else ()


def select_multi(detector: Detector, model: Model, dataset: Dataset, modality: str) -> list[str]:
    """The single reported output of a multi-input detector, after checking the model has its inputs."""
    inputs = multi_inputs(detector)
    name = "+".join(inputs)
    if modality not in ("all", name):
        raise UsageError(f"detector {detector.name!r} scores {'+'.join(inputs)} together: drop --modality")
    missing = [i for i in inputs if not output_usable(i, model, set(dataset.modalities))]
    if missing:
        raise UsageError(
            f"detector {detector.name!r} needs the {', '.join(inputs)} embeddings; model "
            f"{model.spec.name!r} on dataset {dataset.name!r} lacks {', '.join(missing)}"
        )
    if isinstance(detector, MultiInputDetector):  # e.g. mismatch refuses models without a shared space
        detector.check_model(model.spec)
    return [name]


def detect_multi(detector: Detector, emb: EmbedResult, seed: int) -> tuple[np.ndarray, dict, dict, dict]:
    """Scores of a multi-input detector on the objects that have every input (NaN elsewhere),
    bookkeeping, component scores and extra per-object columns (both full length, NaN-padded)."""
    mats = {i: emb.matrix(i) for i in multi_inputs(detector)}
    valid = np.logical_and.reduce([np.isfinite(X).all(axis=1) for X in mats.values()])
    if valid.sum() < 2:
        raise DetectorError(f"detector {detector.name!r}: fewer than 2 objects have all of {', '.join(mats)}")
    order = canonical_order(emb.table)
    idx = order[valid[order]]  # the objects that have every input, sorted by object_id
    t0 = time.perf_counter()
    scores = np.full(len(valid), np.nan)
    scores[idx] = detector.fit_score_inputs({k: X[idx] for k, X in mats.items()}, seed=seed)
    if not np.isfinite(scores[valid]).all():
        raise DetectorError(f"detector {detector.name!r} returned non-finite scores")

    def pad(v: np.ndarray) -> np.ndarray:
        full = np.full(len(valid), np.nan) if v.dtype.kind == "f" else np.full(len(valid), None, dtype=object)
        full[idx] = v
        return full

    info = {
        "n_scored": int(valid.sum()),
        "n_missing": int((~valid).sum()),
        "n_duplicate_rows": {k: duplicate_rows(X[idx]) for k, X in mats.items()},
        "detect_seconds": round(time.perf_counter() - t0, 4),
        "inputs": list(mats),
        "details": getattr(detector, "details_", {}),
    }
    comps = {k: pad(np.asarray(v, np.float64)) for k, v in getattr(detector, "components_", {}).items()}
    extras = {k: pad(np.asarray(v)) for k, v in getattr(detector, "extras_", {}).items()}
    return scores, info, comps, extras


def table_labels(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(labelled, is_anomaly, anomaly_class)`` of every row (see :func:`fmb.data.canonical.resolve_labels`)."""
    return C.resolve_labels(
        table.column(C.IS_ANOMALY), table.column(C.ANOMALY_CLASS) if C.ANOMALY_CLASS in table.column_names else None
    )


def _metrics(
    labels: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    scores: np.ndarray,
    artefacts: tuple[str, ...] = (),
    order: np.ndarray | None = None,
    seed: int | None = None,
) -> dict:
    """Label metrics of the labelled objects with a finite score (unlabelled ones are counted); the
    artefact fraction of the top-k where the data set names its artefact classes; with ``order`` (the
    canonical order, :func:`canonical_order`) and ``seed``, also the bootstrap intervals of AUROC and AP
    (:func:`fmb.protocol.metrics.bootstrap_intervals`) over the objects in that order, so that they do not
    depend on the order of the rows."""
    valid = np.isfinite(scores)
    labelled, y, cls = labels
    out = compute_metrics(scores[valid], y[valid], None if cls is None else cls[valid], labelled[valid])
    if cls is not None:
        keep = valid & labelled
        out |= artefact_fraction(scores[keep], cls[keep], artefacts)
    if order is not None and seed is not None:
        keep = order[(valid & labelled)[order]]
        out.update(bootstrap_intervals(scores[keep], y[keep], seed))
    return out


def _warn_duplicates(reporter: Reporter, detector: Detector, output: str, info: dict) -> None:
    """One warning per output whose embeddings repeat rows exactly (e.g. blank off-footprint cutouts)."""
    counts = info.get("n_duplicate_rows") or 0
    n = sum(counts.values()) if isinstance(counts, dict) else counts
    if not n:
        return
    base = getattr(detector, "base", detector)  # fusion scores with a base detector
    dedup = bool(getattr(base, "deduplicates", False))
    info["deduplicated"] = dedup
    what = (
        f"detector {base.name!r} is fitted on the distinct rows and scores identical rows alike"
        if dedup
        else f"detector {base.name!r} scores them as they are"
    )
    reporter.warn(
        f"output {output!r}: {n} embedding rows repeat another row exactly (blank cutouts or "
        f"spectra?): {what} (n_duplicate_rows in results.json)"
    )


def _embedding_seconds(emb: EmbedResult) -> float:
    """The model's seconds on these embeddings: the sum of the seconds each cache shard records (wherever
    and whenever it was embedded: a Slurm array task, a local shard), else, for a cache written before
    shards recorded them, this process's embedding time."""
    secs = [s.get("seconds") for s in emb.shards]
    if secs and all(isinstance(x, (int, float)) for x in secs):
        return round(float(sum(secs)), 3)
    return round(emb.seconds, 3)


def run_system(
    reg: Registry,
    cfg: RunConfig,
    out_dir: Path,
    reporter: Reporter,
    cached_only: bool = False,
    workers: int | None = None,
    embedded: list[Any] | None = None,
    started: str | None = None,
) -> dict[str, Any]:
    """Run one model x detector x dataset x seed and write results.json and scores.parquet as one unit
    (:func:`fmb.runs.write_run`).

    ``cached_only`` scores the cached embeddings that ``fmb embed`` (or an executor's embedding unit)
    recorded for this request, without building the model (:func:`fmb.protocol.embed.cached_model`);
    nothing is embedded. A folder holding another system's run is refused before any work unless
    ``cfg.overwrite``. ``started`` (UTC ISO 8601) is when the run began (default: now), recorded in
    ``provenance`` with the end time, host, command line, git revision, GPU and model libraries.
    """
    started = started or utc_now()
    detector = check_config(reg, cfg)  # bad names, options and parameters fail before any work
    check_run_dir(out_dir, cfg.to_dict(), overwrite=cfg.overwrite)
    device = resolve_device(cfg.device)
    dataset = open_dataset(reg, cfg.dataset, cfg.dataset_options)
    model: Any = (
        cached_model(reg.model(cfg.model), cfg.model_options, cfg.weights, cfg.seed, dataset, cfg.precision)
        if cached_only
        else load_model(reg, cfg, device)
    )
    multi = bool(multi_inputs(detector))
    outputs = (
        select_multi(detector, model, dataset, cfg.modality) if multi else select_outputs(model, dataset, cfg.modality)
    )
    used = {m for o in outputs for p in o.split("+") for m in (("image", "spectrum") if p == "joint" else (p,))}
    warnings = [w for w in domain_warnings(dataset.schema, model.spec.input_contract) if w.split(":", 1)[0] in used]
    for w in warnings:
        reporter.warn(f"model {cfg.model!r} on {dataset.name}: outside the training domain: {w}")
    if model.weights.kind == "random":
        reporter.warn(
            f"model {cfg.model!r} runs with RANDOM weights: its results say nothing about the "
            "trained model (weights: random is recorded)"
        )

    if cached_only:
        emb = read_cached(model, dataset)
        if embedded:  # the shard results of this run's embedding unit (built, rebuilt, time)
            emb.built_shards = sum(r.built for r in embedded)
            emb.reused_shards = max(0, emb.reused_shards - emb.built_shards)
            emb.rebuilt_shards = [r.index for r in embedded if r.rebuilt]
            emb.seconds += sum(r.seconds for r in embedded)
    else:
        with reporter.progress(f"embed {cfg.model} on {dataset.name}", total=len(dataset)) as advance:
            emb = embed_dataset(
                model,
                dataset,
                batch_size=cfg.batch_size,
                progress=advance,
                notice=reporter.warn,
                workers=workers,
                precision=cfg.precision,
            )
    if emb.reused:
        reporter.info(f"reused cached embeddings {emb.key} ({emb.path})")

    table = emb.table
    has_labels = C.IS_ANOMALY in table.column_names
    labels = table_labels(table) if has_labels else None
    n_unlabelled = int((~labels[0]).sum()) if labels else 0
    order = canonical_order(table)
    if n_unlabelled:
        reporter.warn(
            f"{n_unlabelled} of {len(table)} objects have no is_anomaly label (null): they are "
            "unlabelled, left out of every metric and counted as n_unlabelled"
        )
    artefacts = tuple(dataset.artefact_classes)
    per_modality: dict[str, Any] = {}
    failed: dict[str, str] = {}
    errors: list[FMBError] = []
    score_tables = []
    nuisance = variables_for(dataset, table)  # one pass over the data set for every output (fmb.protocol.nuisance)
    with reporter.progress(f"detect with {cfg.detector}", total=len(outputs)) as advance:
        for out in outputs:
            comps: dict[str, np.ndarray] = {}
            extras: dict[str, np.ndarray] = {}
            try:
                if multi:
                    scores, info, comps, extras = detect_multi(detector, emb, cfg.seed)
                else:
                    scores, info = detect(detector, emb, out, cfg.seed)
            except FMBError as exc:  # one output that cannot be scored does not lose the others
                failed[out] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if dataset.repairs.counts:  # e.g. spectrum_invalid_error_masked: why nothing was left
                    failed[out] += (
                        " (data repairs: "
                        + ", ".join(f"{k}={v}" for k, v in sorted(dataset.repairs.counts.items()))
                        + ")"
                    )
                errors.append(exc)
                advance(1)
                continue
            _warn_duplicates(reporter, detector, out, info)
            valid = np.isfinite(scores)
            r = np.zeros(len(scores), dtype=np.int64)
            r[valid] = ranks(scores[valid])
            metrics = _metrics(labels, scores, artefacts, order, cfg.seed) if labels else None
            entry: dict[str, Any] = {
                **info,
                "metrics": metrics,
                "nuisance_spearman": nuisance_correlations(dataset, table, scores, nuisance),
            }
            if comps:
                entry["components"] = {
                    k: {"metrics": _metrics(labels, v) if labels else None} for k, v in comps.items()
                }
            per_modality[out] = entry
            cols = {
                "object_id": table.column(C.OBJECT_ID),
                "modality": pa.array([out] * len(scores)),
                "score": pa.array(scores),
                "rank": pa.array(np.where(valid, r, None), pa.int64()),
            }
            for c in C.LABEL_COLUMNS:
                if c in table.column_names:
                    cols[c] = table.column(c)
            if labels and labels[2] is not None:  # flagged anomalies without a class read "unknown"
                cols[C.ANOMALY_CLASS] = pa.array(labels[2], pa.string())
            cols.update({k: pa.array(v, from_pandas=True) for k, v in extras.items()})
            cols.update({k: pa.array(v, from_pandas=True) for k, v in nuisance.items()})  # NaN -> null
            score_tables.append(pa.table(cols))
            advance(1)
    if not per_modality:
        if len(errors) == 1:
            raise errors[0]
        raise type(errors[0])("no output could be scored: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    for out, cause in failed.items():
        reporter.warn(f"output {out!r} not scored (the others are; failed_outputs in results.json): {cause}")

    weights = model.weights.to_dict()
    overlap = training_overlap(model.weights.retrained, dataset, table.column(C.OBJECT_ID).to_pylist())
    if overlap is not None:
        weights["trained_on_scored_objects"] = overlap
    if overlap:
        sources = overlap_sources(model.weights.retrained, dataset, table.column(C.OBJECT_ID).to_pylist())
        reporter.warn(
            f"model {cfg.model!r}: {overlap} of the {len(table)} scored objects are objects its retrained weights "
            f"were trained on ({'; '.join(sources)}): score a held-out split "
            "(trained_on_scored_objects in results.json)"
        )

    result = {
        "schema_version": SCHEMA_VERSION,
        "fmb_version": __version__,
        "plugins": {i.distribution: i.version for i in plugin_info()},
        "config": cfg.to_dict(),
        "environment": environment(device, cfg.seed),
        "provenance": provenance(started, device),
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "size": len(dataset),
            "options": dataset.options(),
            "has_labels": has_labels,
            "n_unlabelled": n_unlabelled,
            "repairs": dataset.repairs.counts,
            "artefact_classes": list(artefacts),
        },
        "model": {
            "name": model.spec.name,
            "version": model.spec.version,
            "source": model.spec.source,
            "license": model.spec.license,
            "weights": weights,
            "settings": model.settings(),
            "options": model_options(model),
            "input_adaptation": model.input_adaptation(dataset.schema),
        },
        "domain_warnings": warnings,
        "detector": {"name": cfg.detector, "params": detector.params, "source": reg.detector(cfg.detector).source},
        "embedding": {
            "cache_key": emb.key,
            "precision": emb.ident.get("precision", cfg.precision),
            "reused": emb.reused,
            "shards_built": emb.built_shards,
            "shards_reused": emb.reused_shards,
            "shards_rebuilt": emb.rebuilt_shards,
            "seconds": _embedding_seconds(emb),
            "wall_seconds": round(emb.seconds, 3),
            "shards": emb.shards,
            "key_ingredients": emb.ident,
        },
        "modalities": per_modality,
        "failed_outputs": failed,
    }
    return write_run(out_dir, result, pa.concat_tables(score_tables))
