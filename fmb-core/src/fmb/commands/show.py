"""``fmb show DATASET``: a PNG card of one object (its bands, RGB and spectrum)."""

from __future__ import annotations

import click


@click.command("show")
@click.argument("dataset")
@click.option("--object-id", default=None, help="The object to show (default: the first).")
@click.option("--index", type=int, default=None, help="Or its position in the data set (0-based).")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False), default=None, help="PNG file to write (default: object-<id>.png)."
)
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
