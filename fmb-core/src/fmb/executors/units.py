"""The units of work of a benchmark run, as objects: every executor runs these and only these.

- :class:`EmbedShards`: embed shards ``indices`` of one embedding (model x dataset x weights x seed)
  into the cache, loading the model once; Slurm array tasks run it through ``fmb embed --shard I/N``.
- :class:`ScoreSystem`: detect and score one system from the cached embeddings (the model is never
  built) and write its run folder; Slurm runs it through ``fmb detect``.
- :class:`ReportRuns`: the HTML report of each run folder.

The local executor (:mod:`fmb.executors.local`) calls them directly; the Slurm executor renders them
as command lines (the only place where a unit becomes strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmb.plugins import Registry
from fmb.protocol.embed import ShardResult, embed_shard
from fmb.protocol.environment import resolve_device
from fmb.protocol.run import RunConfig, load_model, open_dataset, run_system
from fmb.reporting import Reporter


@dataclass
class EmbedShards:
    """Embed shards ``indices`` of ``count`` (``shard_size`` objects each) of ``config``'s embedding;
    with ``progress_dir`` a progress marker per finished shard (for ``fmb status`` and resubmission)."""

    config: RunConfig
    indices: list[int]
    count: int
    shard_size: int | None = None
    progress_dir: Path | None = None

    def run(self, reg: Registry, reporter: Reporter, workers: int = 1) -> list[ShardResult]:
        from fmb.executors.plan import write_progress

        cfg = self.config
        dataset = open_dataset(reg, cfg.dataset, cfg.dataset_options)
        model = load_model(reg, cfg, resolve_device(cfg.device))
        size = self.shard_size or -(-len(dataset) // self.count)
        rows = sum(max(0, min(len(dataset), (i + 1) * size) - i * size) for i in self.indices)
        results = []
        label = f"[{self.indices[0]}/{self.count}]" if len(self.indices) == 1 else f"({len(self.indices)} shard(s))"
        with reporter.progress(f"embed {cfg.model} on {dataset.name} {label}", total=rows) as advance:
            for i in self.indices:
                res = embed_shard(
                    model,
                    dataset,
                    i,
                    self.count,
                    batch_size=cfg.batch_size,
                    shard_size=self.shard_size,
                    progress=advance,
                    notice=reporter.warn,
                    workers=workers,
                    precision=cfg.precision,
                )
                if self.progress_dir is not None and res.marker is not None:
                    write_progress(self.progress_dir, i, res.path, res.marker)
                results.append(res)
        return results


@dataclass
class ScoreSystem:
    """Detect and score one system from the cached embeddings; writes ``out_dir`` (results.json,
    scores.parquet) and returns the results."""

    config: RunConfig
    out_dir: Path
    #: what the embedding unit of the same run did (shards built/rebuilt, seconds), for results.json
    embedded: list[ShardResult] | None = None
    #: when the run began (UTC ISO 8601; default: when this unit starts)
    started: str | None = None

    def run(self, reg: Registry, reporter: Reporter) -> dict[str, Any]:
        return run_system(
            reg,
            self.config,
            Path(self.out_dir),
            reporter,
            cached_only=True,
            embedded=self.embedded,
            started=self.started,
        )


@dataclass
class ReportRuns:
    """report.html in each run folder; a failure warns (the results stay)."""

    run_dirs: list[str]

    def run(self, reporter: Reporter) -> list[str]:
        from fmb.report.build import build_report

        written = []
        for d in self.run_dirs:
            try:
                written.append(str(build_report([d], reporter=reporter)))
            except Exception as exc:  # the results are written: a figure that fails must not lose them
                if reporter.debug:
                    raise
                reporter.warn(
                    f"the HTML report of {d} could not be written ({type(exc).__name__}: {exc}); "
                    f"try `fmb --debug report {d}`"
                )
        return written
