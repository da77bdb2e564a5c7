"""``fmb retrain aion``: train the Euclid -> HSC adapter through the frozen AION image codec.

Heavy modules (torch, aion) are imported inside the command only.
"""

from __future__ import annotations

import click

from fmb_aion.sizes import SIZES


@click.command("aion")
@click.option("--dataset", default="synthetic", show_default=True,
              help="Dataset name[:key=value,...] whose images train the adapter.")
@click.option("--weights", default="auto", show_default=True,
              help="Image-codec weights: auto|random|PATH|hf:REPO[@REV] (the codec stays frozen).")
@click.option("--size", type=click.Choice(SIZES), default=None, help="Codec size for random weights (default base).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=1e-4, show_default=True, type=float, help="Adam learning rate.")
@click.option("--max-objects", default=0, show_default=True, type=click.IntRange(0),
              help="Train on the first N objects only (0 = all).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--output", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint file (default $FMB_HOME/adapters/aion/<dataset>-seed<N>.pt).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def retrain_aion(dataset, weights, size, epochs, batch_size, lr, max_objects, seed, output, quiet) -> None:
    """Train AION's learned Euclid->HSC image adapter (cycle loss through the frozen codec)."""
    import torch

    from fmb.home import cache_dir
    from fmb.params import parse_spec
    from fmb.plugins import registry
    from fmb.protocol.run import open_dataset
    from fmb.reporting import Reporter
    from fmb_aion.adapter import EuclidHSCAdapter, save_adapter, train
    from fmb_aion.bands import ADAPTER, EUCLID_BANDS
    from fmb_aion.preprocess import images_from_batch
    from fmb_aion.weights import resolve

    reporter = Reporter(quiet=quiet)
    name, options = parse_spec(dataset, "dataset")
    ds = open_dataset(registry(), name, options)
    stop = min(len(ds), max_objects) if max_objects else len(ds)
    comps = resolve(weights, size or "base", seed, size_given=size is not None)
    if comps.info.kind == "random":
        reporter.warn("the image codec has RANDOM weights: the adapter learns to suit a random codec")

    def batches():
        for b in ds.iter_batches(batch_size, start=0, stop=stop):
            img = images_from_batch(b, ADAPTER.pixel_scale)
            order = [img.bands.index(x) for x in EUCLID_BANDS]
            x = torch.from_numpy(img.flux[img.valid][:, order])
            if len(x):
                yield x

    torch.manual_seed(seed)
    adapter = EuclidHSCAdapter()
    n_batches = -(-stop // batch_size)
    with reporter.progress(f"retrain aion adapter on {ds.name}", total=epochs * n_batches) as advance:
        history = train(adapter, comps.image_codec, batches, epochs=epochs, lr=lr,
                        log=lambda e, i, loss: advance(1))
    path = output or str(cache_dir("adapters", "aion") / f"{ds.name}-seed{seed}.pt")
    meta = {"dataset": ds.name, "dataset_fingerprint": ds.fingerprint, "objects": stop, "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "seed": seed, "codec_weights": comps.info.to_dict(),
            "codec_size": comps.size, "epoch_losses": history}
    save_adapter(adapter, path, meta)
    click.echo(f"epoch losses: {', '.join(f'{v:.5f}' for v in history)}")
    click.echo(f"wrote {path}\nuse it with: fmb run --model aion:adapter={path} ...")


def add_to(cli: click.Group) -> None:
    """Add ``retrain aion`` under the shared ``retrain`` group (created when no plugin made it yet)."""
    if not isinstance(cli, click.Group):
        return  # nothing to add to (e.g. a hook call made without a CLI)
    group = cli.commands.get("retrain")
    if not isinstance(group, click.Group):
        @click.group("retrain")
        def group() -> None:
            """Retrain or adapt parts of a model (subcommands come from model plugins)."""

        cli.add_command(group)
    group.add_command(retrain_aion)
