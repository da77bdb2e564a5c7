"""``fmb new-plugin NAME``: write a skeleton model-plugin package (the files: :mod:`fmb.scaffold`)."""

from __future__ import annotations

import click

from fmb.scaffold import new_plugin


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default=".",
    type=click.Path(file_okay=False),
    help="Where to create the fmb-NAME folder (default: here).",
)
def new_plugin_command(name: str, directory: str) -> None:
    """Write a skeleton model plugin, fmb-NAME, that passes FMB's conformance kit."""
    root = new_plugin(name, directory)
    click.echo(f"wrote {root}\nnext: pip install -e '{root}[test]' && python -m pytest {root}/tests")
