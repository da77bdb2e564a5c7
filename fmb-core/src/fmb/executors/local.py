"""The local executor: the same units as on Slurm (embed each missing shard, then detect), in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmb.executors.plan import RunPlan, write_progress
from fmb.params import parse_spec
from fmb.plugins import Registry
from fmb.protocol.embed import embed_shard
from fmb.protocol.environment import resolve_device
from fmb.protocol.run import RunConfig, load_model, open_dataset, run_system
from fmb.reporting import Reporter


def unit_config(args: list[str]) -> RunConfig:
    """The RunConfig of an embedding unit's ``fmb embed`` arguments."""
    opts = dict(zip(args[::2], args[1::2]))
    model, model_options = parse_spec(opts["--model"], "model")
    dataset, dataset_options = parse_spec(opts["--dataset"], "dataset")
    return RunConfig(model=model, model_options=model_options, detector="none", dataset=dataset,
                     dataset_options=dataset_options, weights=opts["--weights"], seed=int(opts["--seed"]),
                     device=opts["--device"], batch_size=int(opts["--batch-size"]))


def run_local(reg: Registry, plan: RunPlan, reporter: Reporter, workers: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """Embed the missing shards of every unit, then detect and score every system; returns the results."""
    plan.save()
    for unit in plan.embed:
        missing = plan.missing_shards(unit)
        if not missing:
            continue
        cfg = unit_config(unit.args)
        dataset = open_dataset(reg, cfg.dataset, cfg.dataset_options)
        model = load_model(reg, cfg, resolve_device(cfg.device))
        rows = sum(min(unit.n_objects, (i + 1) * unit.shard_size) - i * unit.shard_size for i in missing)
        with reporter.progress(f"embed {cfg.model} on {dataset.name} ({len(missing)} shard(s))",
                               total=rows) as advance:
            for i in missing:
                res = embed_shard(model, dataset, i, unit.n_shards, batch_size=cfg.batch_size,
                                  shard_size=unit.shard_size, progress=advance, notice=reporter.warn,
                                  workers=workers)
                if res.marker is not None:
                    write_progress(plan.progress_dir(unit), i, res.path, res.marker)
    done = []
    for d in plan.detect:
        cfg = RunConfig(**d.config)
        done.append((d.out_dir, run_system(reg, cfg, Path(d.out_dir), reporter, cached_only=True)))
    return done
