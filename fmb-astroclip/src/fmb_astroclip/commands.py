"""``fmb retrain astroclip``: added to a shared ``retrain`` group through ``register_commands(cli)``.

Only click is imported here; torch and the training code load when the command runs.
"""

from __future__ import annotations

import click


@click.command("astroclip")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset name[:key=value,...].")
@click.option("--size", default=None, help="official | small (default: official, or the checkpoint's).")
@click.option("--weights", default="auto", show_default=True, help="Start from: auto | random | PATH | hf:REPO[@REV].")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--weight-decay", type=float, default=0.05, show_default=True)
@click.option("--warmup-steps", type=int, default=100, show_default=True)
@click.option("--grad-clip", type=float, default=1.0, show_default=True)
@click.option("--unfreeze-blocks", type=int, default=0, show_default=True,
              help="Also train the last k blocks of each backbone.")
@click.option("--learnable-scale", is_flag=True, help="Learn the logit scale (exp of a parameter).")
@click.option("--val-fraction", type=float, default=0.2, show_default=True)
@click.option("--patience", type=int, default=3, show_default=True, help="Early stopping patience (epochs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda.")
@click.option("--no-amp", is_flag=True, help="No bf16 autocast on GPU.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Checkpoint folder (default fmb-retrain/astroclip-<size>-<dataset>).")
@click.option("--resume", is_flag=True, help="Continue the run saved in --output.")
def retrain_astroclip(dataset, size, weights, epochs, batch_size, lr, weight_decay, warmup_steps, grad_clip,
                      unfreeze_blocks, learnable_scale, val_fraction, patience, seed, device, no_amp, output,
                      resume) -> None:
    """Contrastive fine-tuning of AstroCLIP's heads on DATASET; the result works as --weights DIR."""
    from fmb.params import format_spec, parse_spec
    from fmb.plugins import registry
    from fmb.protocol.environment import resolve_device
    from fmb.protocol.run import open_dataset
    from fmb_astroclip.retrain import RetrainConfig, retrain

    name, options = parse_spec(dataset, "dataset")
    cfg = RetrainConfig(dataset=name, dataset_options=options, size=size, weights=weights, epochs=epochs,
                        batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                        grad_clip=grad_clip, unfreeze_blocks=unfreeze_blocks, learnable_scale=learnable_scale,
                        val_fraction=val_fraction, patience=patience, seed=seed, device=resolve_device(device),
                        amp=not no_amp)
    safe = "".join(c if c.isalnum() or c in "._-=" else "-" for c in format_spec(name, options))
    out = output or f"fmb-retrain/astroclip-{size or 'official'}-{safe}"
    ds = open_dataset(registry(), name, options)
    summary = retrain(cfg, out, ds, resume=resume, log=click.echo)
    click.echo(f"best epoch {summary['best_epoch']} (validation loss {summary['best_val_loss']:.4f}); "
               f"wrote {out}/model.safetensors: use --weights {out}")


def add_retrain_command(cli: click.Group) -> None:
    """Add ``astroclip`` to the ``retrain`` group, creating the group if no plugin has yet."""
    group = cli.commands.get("retrain")
    if group is None:
        @cli.group("retrain")
        def retrain_group() -> None:
            """Retrain (fine-tune) a model on a dataset."""

        group = retrain_group
    if not isinstance(group, click.Group):
        raise click.ClickException("another plugin registered 'retrain' as a plain command, not a group")
    group.add_command(retrain_astroclip)
