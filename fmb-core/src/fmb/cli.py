"""The ``fmb`` command line: the group, its error handling, and the wiring of the commands.

Every command is implemented in :mod:`fmb.commands` (one module per command or family); this module
only adds them to the group. Heavy modules are imported inside commands, never at start-up."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from fmb import __version__

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
            click.echo(
                f"Error: {type(exc).__name__}: {exc}".splitlines()[0] + " (run `fmb --debug ...` for the traceback)",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=FMBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fmb")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per stage for BLAS/OpenMP/torch (default: $FMB_THREADS, else $OMP_NUM_THREADS, else the CPUs).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, threads: int | None) -> None:
    """FMB, the Foundation Models Benchmark: embed -> detect -> score -> compare -> report."""
    ctx.ensure_object(dict)["debug"] = debug
    if threads is not None:  # read by fmb.threads.n_threads in every stage (and by Slurm job scripts)
        import os

        os.environ["FMB_THREADS"] = str(threads)


def _add_commands() -> None:
    """Add every core command to the group (plugins add theirs in :func:`main`)."""
    from fmb.commands.compare import compare_cmd
    from fmb.commands.export import export_cmd
    from fmb.commands.leaderboard import leaderboard_cmd
    from fmb.commands.listing import datasets, detectors, models, plugins
    from fmb.commands.neighbors import neighbors_cmd
    from fmb.commands.new_plugin import new_plugin_command
    from fmb.commands.pipeline import detect, embed, run
    from fmb.commands.probe import probe_cmd
    from fmb.commands.retrain import retrain
    from fmb.commands.review import review_cmd
    from fmb.commands.show import show
    from fmb.commands.status import status
    from fmb.report.command import report_cmd

    for c in (
        plugins,
        models,
        datasets,
        detectors,
        run,
        embed,
        detect,
        show,
        compare_cmd,
        probe_cmd,
        neighbors_cmd,
        review_cmd,
        leaderboard_cmd,
        export_cmd,
        report_cmd,
        new_plugin_command,
        status,
        retrain,
    ):
        cli.add_command(c)


_add_commands()


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
    if "--debug" not in sys.argv[1:]:
        warnings.showwarning = one_line_warning
    cli(prog_name="fmb")


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the console script: a warning is one line, ``Warning: <message>``, on
    stderr (Python's default adds the source line that raised it); ``fmb --debug`` keeps Python's."""
    click.echo(f"Warning: {message}".splitlines()[0], err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
