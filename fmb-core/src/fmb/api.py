"""The Python API: everything ``fmb run`` / ``fmb embed`` do, one call each from a notebook.

Same units, same validation, same numbers and the same exceptions as the CLI (the FMBError family of
:mod:`fmb.errors`: UsageError, DataError, ModelError, DetectorError; UnknownNameError for a bad name):
``fmb.run`` goes through the CLI's configuration (:mod:`fmb.config`), checks and local executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """One system's run folder: ``results`` (results.json), ``metrics`` per modality, ``scores`` (a
    pandas DataFrame of scores.parquet: object_id, modality, score, rank, labels) and ``path``."""

    path: Path
    results: dict[str, Any]
    _scores: Any = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """``{modality: metrics}`` (AUROC, AP, precision/recall@k, per class; None without labels)."""
        return {m: v.get("metrics") for m, v in self.results.get("modalities", {}).items()}

    @property
    def scores(self) -> Any:
        if self._scores is None:
            from fmb.runs import read_run

            self._scores = read_run(self.path)[1].to_pandas()
        return self._scores


def _configs(model: str, detector: str, dataset: str, **options: Any) -> list:
    from fmb.config import expand, resolve

    overrides = {
        "models": [model],
        "detectors": [detector],
        "datasets": [dataset],
        **{k: v for k, v in options.items() if k != "seeds"},
    }
    if "seed" in overrides:
        overrides["seeds"] = [overrides.pop("seed")]
    return expand(resolve(None, overrides))


def run(
    model: str = "baseline",
    detector: str = "iforest",
    dataset: str = "synthetic",
    *,
    output: str | Path | None = None,
    report: bool = False,
    quiet: bool = True,
    shards: int | None = None,
    **options: Any,
) -> RunResult:
    """Embed, detect and score one system, like ``fmb run``; returns its :class:`RunResult`.

    ``model``, ``detector`` and ``dataset`` take the CLI's ``name:key=value,...`` form; ``options`` are
    the CLI's flags (``modality``, ``weights``, ``seed``, ``device``, ``batch_size``, ``precision``,
    ``overwrite``).
    ``output`` defaults to ``fmb-results/<system>``. Raises the CLI's errors (UsageError, ...).
    """
    from fmb.executors.local import run_local
    from fmb.executors.plan import build_plan, out_dirs
    from fmb.plugins import registry
    from fmb.protocol.run import check_config
    from fmb.reporting import Reporter
    from fmb.runs import check_run_dir

    (cfg,) = _configs(model, detector, dataset, **options)
    reg = registry()
    check_config(reg, cfg)
    out = out_dirs([cfg], str(output) if output else None)[0]  # as the CLI: fmb-results/<system> by default
    check_run_dir(out, cfg.to_dict(), overwrite=cfg.overwrite)
    plan = build_plan(reg, [cfg], [out], out, "local", shards, None, report=report)
    ((path, result),) = run_local(reg, plan, Reporter(quiet=quiet), report=report, persist=shards is not None)
    return RunResult(Path(path), result)


def embed(model: str = "baseline", dataset: str = "synthetic", *, quiet: bool = True, **options: Any) -> Any:
    """The embeddings of every object, like ``fmb embed`` (reusing the cache): a pyarrow Table with
    ``object_id``, the label columns and one fixed-size-list column per output (``image``,
    ``spectrum``, ``joint``: float32 [dim])."""
    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.protocol.environment import resolve_device
    from fmb.protocol.run import load_model, open_dataset
    from fmb.reporting import Reporter

    (cfg,) = _configs(model, "none", dataset, **options)
    reg, reporter = registry(), Reporter(quiet=quiet)
    ds = open_dataset(reg, cfg.dataset, cfg.dataset_options)
    m = load_model(reg, cfg, resolve_device(cfg.device))
    return embed_dataset(m, ds, batch_size=cfg.batch_size, notice=reporter.warn, precision=cfg.precision).table


def get_model(name: str, weights: str = "auto", device: str = "cpu", seed: int = 0, **options: Any) -> Any:
    """A loaded :class:`fmb.models.base.Model`; ``model.embed(batch)`` maps a canonical Arrow batch to
    ``{output: float32 [N, dim]}``. ``name`` may carry options (``"astropt:size=001M"``)."""
    from fmb.params import parse_spec
    from fmb.plugins import registry

    base, opts = parse_spec(name, "model")
    return registry().load_model(base, weights=weights, device=device, options={**opts, **options}, seed=seed)


def load_run(path: str | Path) -> RunResult:
    """A complete run folder (:func:`fmb.runs.read_results`; UsageError when it is not one)."""
    from fmb.runs import read_results

    return RunResult(Path(path), read_results(path))


def list_models() -> list[dict[str, Any]]:
    """Every registered model: its spec as a dict (name, modalities, outputs, version, licence, ...)."""
    from fmb.plugins import registry

    reg = registry()
    return [reg.model(n).to_dict() for n in reg.names("model")]
