"""The ``fmb`` command line. Heavy modules are imported inside commands, never at start-up."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fmb import __version__
from fmb.commands.execute import embed_options, run_options

EXIT_USAGE = 2


class FMBGroup(click.Group):
    """Turns known errors into one line and exit status 2; ``--debug`` shows tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        from fmb.errors import FMBError
        from fmb.plugins import PluginError, UnknownNameError
        from fmb.specs import SpecError

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except (FMBError, UnknownNameError, SpecError, PluginError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}".splitlines()[0], err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {type(exc).__name__}: {exc}".splitlines()[0]
                       + " (run `fmb --debug ...` for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=FMBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fmb")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """FMB, the Foundation Models Benchmark: embed -> detect -> score -> compare -> report."""
    ctx.ensure_object(dict)["debug"] = debug


# ---------------------------------------------------------------- listing


def _emit(rows: list[dict], as_json: bool, columns: list[str], title: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    from fmb.reporting import print_table

    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else
                        ", ".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else str(v)
                        for v in (r.get(c, "") for c in columns)))
    print_table(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Installed plugins: distribution, version, hooks and what each registers."""
    from fmb.plugins import plugin_info, registry

    reg = registry()
    rows = []
    for info in plugin_info():
        registers = {kind: sorted(n for n, s in specs.items() if s.source.endswith(f"({info.name})"))
                     for kind, specs in reg.specs.items()}
        rows.append({"name": info.name, "distribution": info.distribution, "version": info.version,
                     "module": info.module, "hooks": info.hooks,
                     "registers": {k: v for k, v in registers.items() if v},
                     "problems": reg.problems(info.name)})
    _emit(rows, as_json, ["name", "distribution", "version", "hooks", "registers", "problems"], "FMB plugins")


def _list_kind(kind: str, as_json: bool, columns: list[str]) -> None:
    from fmb.plugins import registry

    reg = registry()
    rows = [{**spec.to_dict(), "conflict": []} for _, spec in sorted(reg.specs[kind].items())]
    for name, sources in sorted(reg.conflicts[kind].items()):  # unusable: shown, never silently dropped
        rows.append({"name": name, "kind": kind, "source": "CONFLICT: " + " / ".join(sources), "conflict": sources})
    rows.sort(key=lambda r: r["name"])
    _emit(rows, as_json, columns, f"FMB {kind}s")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def models(as_json: bool) -> None:
    """Registered models with their modalities and embedding sizes."""
    _list_kind("model", as_json, ["name", "modalities", "outputs", "version", "license", "source"])


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def datasets(as_json: bool) -> None:
    """Registered datasets: modalities and whether labels exist."""
    _list_kind("dataset", as_json, ["name", "modalities", "has_labels", "description", "source"])


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def detectors(as_json: bool) -> None:
    """Registered anomaly detectors and their default parameters."""
    _list_kind("detector", as_json, ["name", "params", "description", "source"])


# ---------------------------------------------------------------- protocol

_MODALITY = click.Choice(["image", "spectrum", "joint", "all"])


def _common(f):
    opts = [
        click.option("--dataset", "datasets", multiple=True, help="Dataset name[:key=value,...] (default synthetic)."),
        click.option("--modality", type=_MODALITY, default=None, help="Embedding to score (default all)."),
        click.option("--weights", default=None, help="auto | random | PATH | hf:REPO[@REV]."),
        click.option("--seed", "seeds", multiple=True, type=int, help="Random seed (repeat for several)."),
        click.option("--device", default=None, help="auto | cpu | cuda."),
        click.option("--batch-size", type=int, default=None, help="Objects per model batch (default 64)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     help="TOML benchmark file; flags override it."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _configs(config_file: str | None, **overrides: Any) -> list:
    from fmb.config import expand, load_toml, resolve

    data = load_toml(config_file) if config_file else None
    return expand(resolve(data, overrides))


def _out_dirs(cfgs: list, output: str | None) -> list[Path]:
    from fmb.executors.plan import out_dirs

    return out_dirs(cfgs, output)


def _reporter(quiet: bool) -> Any:
    from fmb.reporting import Reporter

    ctx = click.get_current_context(silent=True)
    return Reporter(quiet=quiet, debug=bool(ctx and ctx.obj and ctx.obj.get("debug")))


def _print_results(done: list, reporter: Any, report: bool) -> None:
    """What every path prints: the files written, the summary, the per-class table of one system, the reports."""
    from fmb.reporting import per_class_table, print_table, summary_table
    from fmb.runs import REPORT

    for out_dir, _ in done:
        click.echo(f"wrote {Path(out_dir) / 'results.json'}")
    print_table(summary_table(done), reporter.console)
    if len(done) == 1 and (t := per_class_table(done[0][1])):
        print_table(t, reporter.console)
    if len(done) > 1:
        from fmb.leaderboard import CSV, leaderboard, leaderboard_table

        print_table(leaderboard_table(leaderboard([d for d, _ in done])), reporter.console)
        root = Path(done[0][0]).parent
        if (root / CSV).exists():
            click.echo(f"leaderboard: {root / CSV}")
    if report:
        for out_dir, _ in done:
            if (Path(out_dir) / REPORT).exists():
                click.echo(f"report: {Path(out_dir) / REPORT}")
        if len(done) > 1:
            click.echo(f"one page comparing all {len(done)} runs: fmb report {' '.join(d for d, _ in done)} "
                       "--out FILE.html")


@cli.command()
@click.option("--model", "models", multiple=True, help="Model name[:key=value,...]; repeat for a matrix.")
@click.option("--detector", "detectors", multiple=True, help="Detector name[:key=value,...]; repeat for a matrix.")
@_common
@click.option("--output", default=None, type=click.Path(file_okay=False),
              help="Results folder (default fmb-results/<system>).")
@click.option("--no-report", is_flag=True, help="Do not write the HTML report at the end.")
@click.option("--overwrite", is_flag=True, default=None,
              help="Replace another system's run in the output folder (its report and figures too).")
@run_options
def run(models, detectors, datasets, modality, weights, seeds, device, batch_size, config_file, quiet,
        output, no_report, overwrite, **xopts) -> None:
    """Run the benchmark: embed, detect, score and write results for each system.

    Every path (plain, ``--shards``, ``--shard-size``, ``--executor slurm``) runs the same units
    (:mod:`fmb.executors.units`): embed shards, score each system from the cache, report.
    """
    from fmb.commands.execute import run_matrix
    from fmb.plugins import registry
    from fmb.protocol.run import check_config
    from fmb.runs import check_run_dir

    cfgs = _configs(config_file, models=models, detectors=detectors, datasets=datasets, modality=modality,
                    weights=weights, seeds=seeds, device=device, batch_size=batch_size, output=output,
                    overwrite=overwrite)
    reg = registry()
    for c in cfgs:  # bad names, options and detector parameters fail before any work
        check_config(reg, c)
    if xopts.get("executor", "local") == "local":  # and a folder holding another system's run
        for cfg, out_dir in zip(cfgs, _out_dirs(cfgs, output)):
            check_run_dir(out_dir, cfg.to_dict(), overwrite=cfg.overwrite)
    reporter = _reporter(quiet)
    done = run_matrix(reg, cfgs, output, reporter, report=not no_report, **xopts)
    if done is not None:
        _print_results(done, reporter, report=not no_report)


@cli.command()
@click.option("--model", "models", multiple=True, required=True, help="Model name[:key=value,...].")
@_common
@embed_options
def embed(models, datasets, modality, weights, seeds, device, batch_size, config_file, quiet, **xopts) -> None:
    """Embed a dataset with a model into the embedding cache (stage 2 on its own)."""
    from fmb.commands.execute import embed_matrix
    from fmb.plugins import registry

    cfgs = _configs(config_file, models=models, detectors=["none"], datasets=datasets, modality=modality,
                    weights=weights, seeds=seeds, device=device, batch_size=batch_size)
    embed_matrix(registry(), cfgs, _reporter(quiet), **xopts)


@cli.command()
@click.option("--model", "models", multiple=True, required=True)
@click.option("--detector", "detectors", multiple=True, required=True)
@_common
@click.option("--output", default=None, type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, default=None,
              help="Replace another system's run in the output folder (its report and figures too).")
@click.option("--report", is_flag=True, help="Write report.html in each run folder too.")
def detect(models, detectors, datasets, modality, weights, seeds, device, batch_size, config_file, quiet,
           output, overwrite, report) -> None:
    """Detect and score from cached embeddings only (stage 3; run `fmb embed` first). The model is never
    built: the cache key is the one `fmb embed` recorded for the same model, options, weights and seed."""
    from fmb.executors.units import ReportRuns, ScoreSystem
    from fmb.plugins import registry
    from fmb.protocol.run import check_config
    from fmb.runs import check_run_dir

    cfgs = _configs(config_file, models=models, detectors=detectors, datasets=datasets, modality=modality,
                    weights=weights, seeds=seeds, device=device, batch_size=batch_size, output=output,
                    overwrite=overwrite)
    reg, reporter = registry(), _reporter(quiet)
    for c in cfgs:
        check_config(reg, c)
    for cfg, out_dir in zip(cfgs, _out_dirs(cfgs, output)):
        check_run_dir(out_dir, cfg.to_dict(), overwrite=cfg.overwrite)
    done = [(str(out_dir), ScoreSystem(cfg, out_dir).run(reg, reporter))
            for cfg, out_dir in zip(cfgs, _out_dirs(cfgs, output))]
    if report:
        ReportRuns([d for d, _ in done]).run(reporter)
    if len(done) > 1:  # a matrix: its leaderboard at the root, as `fmb run` writes it
        from fmb.executors.plan import plan_dir
        from fmb.leaderboard import leaderboard, write_leaderboard

        write_leaderboard(leaderboard([d for d, _ in done]), plan_dir(cfgs, output))
    _print_results(done, reporter, report=report)


@cli.command()
@click.argument("dataset")
@click.option("--object-id", default=None, help="The object to show (default: the first).")
@click.option("--index", type=int, default=None, help="Or its position in the data set (0-based).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="PNG file to write (default: object-<id>.png).")
def show(dataset, object_id, index, out) -> None:
    """Save a PNG of one object of DATASET[:key=value,...]: its bands, RGB and spectrum."""
    from fmb.params import parse_spec
    from fmb.plots.object_card import find_object, save_object_card
    from fmb.plugins import registry
    from fmb.protocol.run import open_dataset

    name, options = parse_spec(dataset, "dataset")
    ds = open_dataset(registry(), name, options)
    row = find_object(ds, object_id, 0 if object_id is None and index is None else index)
    path = save_object_card(row, out or f"object-{row.column('object_id')[0].as_py()}.png")
    click.echo(f"wrote {path}")


def _add_analysis_commands() -> None:
    from fmb.commands.compare import compare_cmd
    from fmb.commands.export import export_cmd
    from fmb.commands.leaderboard import leaderboard_cmd
    from fmb.commands.neighbors import neighbors_cmd
    from fmb.commands.probe import probe_cmd

    for c in (compare_cmd, probe_cmd, neighbors_cmd, leaderboard_cmd, export_cmd):
        cli.add_command(c)


_add_analysis_commands()


def _add_report_command() -> None:
    from fmb.report.command import report_cmd

    cli.add_command(report_cmd)


_add_report_command()


from fmb.scaffold import new_plugin_command  # noqa: E402 - light: click and the standard library

cli.add_command(new_plugin_command)


def _add_status_command() -> None:
    from fmb.commands.status import status

    cli.add_command(status)


_add_status_command()


def _add_retrain_group() -> None:
    from fmb.commands.retrain import retrain

    cli.add_command(retrain)


_add_retrain_group()


def main() -> None:
    """Console-script entry point: load plugins and add their commands, then run.

    A plugin error raised while loading (``FMB_RAISE_PLUGIN_ERRORS=1``) is one line and exit
    status 2, like every other known error; ``fmb --debug ...`` shows the traceback.
    """
    from fmb.plugins import PluginError, add_commands
    from fmb.specs import SpecError

    try:
        add_commands(cli)
    except (PluginError, SpecError) as exc:
        if "--debug" in sys.argv[1:]:
            raise
        click.echo(f"Error: {exc}".splitlines()[0], err=True)
        sys.exit(EXIT_USAGE)
    cli(prog_name="fmb")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
