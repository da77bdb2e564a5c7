"""``fmb retrain astropt``: added to the ``retrain`` group (created here unless another plugin made it)."""

from __future__ import annotations

import click


def _retrain_group(cli: click.Group) -> click.Group:
    group = cli.commands.get("retrain")
    if isinstance(group, click.Group):
        return group

    @click.group("retrain")
    def retrain_group() -> None:
        """Continue training a model on a data set (one sub-command per model plugin)."""

    cli.add_command(retrain_group)
    return retrain_group


@click.command("astropt")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset name[:key=value,...].")
@click.option("--model", "model_text", default="astropt", show_default=True,
              help="astropt[:size=001M,...]: options as for fmb run.")
@click.option("--weights", default="auto", show_default=True, help="Starting weights: auto | random | PATH | hf:REPO.")
@click.option("--output", default="fmb-retrained/astropt", show_default=True, type=click.Path(file_okay=False),
              help="Folder for ckpt.pt and history.json.")
@click.option("--max-steps", type=int, default=500, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True, help="Peak learning rate.")
@click.option("--warmup", type=int, default=50, show_default=True, help="Warm-up steps.")
@click.option("--eval-every", type=int, default=25, show_default=True)
@click.option("--patience", type=int, default=4, show_default=True, help="Evaluations without improvement.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--max-objects", type=int, default=0, help="Train on the first N objects only (0 = all).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def retrain_astropt(dataset, model_text, weights, output, max_steps, batch_size, lr, warmup, eval_every, patience,
                    val_fraction, max_objects, seed, device, quiet) -> None:
    """Continue training AstroPT (next-token Huber loss) on DATASET; write ckpt.pt and history.json."""
    from fmb.errors import UsageError
    from fmb.params import parse_spec
    from fmb.plugins import registry
    from fmb.protocol.environment import resolve_device
    from fmb.protocol.run import open_dataset
    from fmb.reporting import Reporter
    from fmb_astropt.retrain import RetrainConfig, retrain

    name, options = parse_spec(model_text, "model")
    if name != "astropt":
        raise UsageError(f"fmb retrain astropt trains astropt, not {name!r}")
    reg = registry()
    ds_name, ds_opts = parse_spec(dataset, "dataset")
    ds = open_dataset(reg, ds_name, ds_opts)
    model = reg.load_model("astropt", weights=weights, device=resolve_device(device), options=options, seed=seed)
    reporter = Reporter(quiet=quiet)
    if model.weights.kind == "random":
        reporter.warn("retraining starts from RANDOM weights")
    cfg = RetrainConfig(max_steps=max_steps, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
                        patience=patience, val_fraction=val_fraction, seed=seed, max_objects=max_objects)
    with reporter.progress(f"retrain astropt on {ds.name}", total=max_steps) as advance:
        hist = retrain(model, ds, output, cfg, progress=advance, source=model.weights.to_dict())
    click.echo(f"validation loss {hist['initial_val_loss']:.4f} -> {hist['best_val_loss']:.4f} "
               f"(best at step {hist['best_step']}; {hist['stop_reason']})")
    click.echo(f"wrote {hist['checkpoint']} (use --weights {hist['checkpoint']})")


def add_retrain_command(cli: click.Group | None) -> None:
    """Add ``retrain astropt`` to ``cli`` (idempotent; anything but a click group is left alone)."""
    if not isinstance(cli, click.Group):
        return
    group = _retrain_group(cli)
    if "astropt" not in group.commands:
        group.add_command(retrain_astropt)
