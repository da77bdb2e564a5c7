"""``fmb retrain MODEL``: core's group; each model plugin adds its sub-command through ``ModelSpec.retrain``.

The spec names a :class:`Retrainer` (``"module:attr"``, imported only when that sub-command is used or
asked for help), so the group's help text is core's and ``fmb --help`` imports no plugin code. Every
sub-command has the same options: ``--dataset``, ``--weights`` (the weights policy of
:mod:`fmb.protocol.weights`), ``--output`` (default :func:`fmb.training.default_output`), ``--resume``,
``--device``, ``--quiet``, then one option per field of the plugin's :class:`fmb.training.TrainingConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class Retrainer:
    """A plugin's retraining: ``config`` (a :class:`fmb.training.TrainingConfig` subclass), ``task``
    (``"module:function"``, ``function(cfg, dataset, weights=..., device=...) -> fmb.training.Task``, imported
    when the command runs), ``help`` (the sub-command's help) and ``usage`` (how to use the result; ``{out}``
    is the run folder, ``{model}`` the model; or a function of the training config returning such a string,
    when the use depends on an option, as AION's ``--part``)."""

    config: type
    task: str
    help: str
    usage: str | Callable[[Any], str] = "fmb run --model {model} --weights {out}"


def _load(ref: str, what: str) -> Any:
    import importlib

    from fmb.errors import ModelError

    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"{what} {ref!r} does not load: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return obj


def _specs() -> dict[str, Any]:
    from fmb.plugins import registry

    reg = registry()
    return {s.name: s for s in (reg.model(n) for n in reg.names("model")) if s.retrain}


def training_split(reg: Any, name: str, options: dict[str, Any], warn: Any) -> dict[str, Any]:
    """The data-set options ``fmb retrain`` trains on: a data set with a ``split`` option (synthetic) trains on
    ``split=train`` unless the user names a split; naming ``all`` or ``test`` (the objects a benchmark scores)
    is allowed with one warning. Other data sets train on every object (a run scoring them is flagged:
    :func:`fmb.protocol.weights.training_overlap`)."""
    from fmb.paramschema import keyword_names

    known = keyword_names(reg.dataset(name).load())
    if not known or "split" not in known:
        return dict(options)
    if "split" not in options:
        return {**options, "split": "train"}
    if str(options["split"]).strip().lower() != "train":
        warn(
            f"retraining on {name} split={options['split']}: the objects a benchmark scores; runs scoring them "
            "will be flagged (weights.trained_on_scored_objects)"
        )
    return dict(options)


def make_command(model: str, r: Retrainer) -> click.Command:
    """The ``fmb retrain MODEL`` command of one plugin."""
    from fmb.training import config_options

    def callback(
        dataset: str, weights: str, output: str | None, resume: bool, device: str, quiet: bool, **opts: Any
    ) -> None:
        from fmb.params import format_spec, parse_spec
        from fmb.plugins import registry
        from fmb.protocol.environment import resolve_device
        from fmb.protocol.run import open_dataset
        from fmb.reporting import Reporter
        from fmb.training import config_from_options, default_output, fit, plan

        cfg = config_from_options(r.config, opts)
        cfg.check()
        reporter = Reporter(quiet=quiet)
        name, options = parse_spec(dataset, "dataset")
        options = training_split(registry(), name, options, reporter.warn)
        ds = open_dataset(registry(), name, options)
        spec = format_spec(name, options)
        out = Path(output) if output else default_output(model, spec, cfg.seed)
        task = _load(r.task, f"retrain {model}: task")(cfg, ds, weights=weights, device=resolve_device(device))
        if task.weights.kind == "random":
            reporter.warn(f"retraining {model} starts from RANDOM weights (seed {task.weights.seed})")
        about = {
            "model": model,
            "dataset": ds.name,
            "dataset_spec": spec,
            "dataset_options": options,
            "dataset_fingerprint": getattr(ds, "fingerprint", ""),
            "dataset_pool": getattr(ds, "object_pool", "") or "",
        }
        with reporter.progress(f"retrain {model} on {ds.name}", total=plan(cfg, len(task.ids))[2]) as advance:
            s = fit(
                task,
                cfg,
                out,
                resume=resume,
                log=(lambda m: None) if quiet else click.echo,
                progress=advance,
                about=about,
            )
        click.echo(
            f"validation loss {s['initial_val_loss']:.4f} -> {s['best_val_loss']:.4f} "
            f"(best at step {s['best_step']}; {s['stop_reason']})"
        )
        usage = r.usage(cfg) if callable(r.usage) else r.usage
        click.echo(f"wrote {out}; use it with: {usage.format(model=model, out=out)}")

    params = [
        click.Option(
            ["--dataset"],
            default="synthetic",
            show_default=True,
            help="Dataset name[:key=value,...]; one with a split option trains on split=train unless given.",
        ),
        click.Option(
            ["--weights"],
            default="auto",
            show_default=True,
            help="Starting weights: auto | random | PATH | hf:REPO[@REV].",
        ),
        click.Option(
            ["--output"],
            default=None,
            type=click.Path(file_okay=False),
            help="Run folder (default $FMB_HOME/retrained/MODEL/DATASET-seedN).",
        ),
        click.Option(["--resume"], is_flag=True, help="Continue the run saved in --output."),
        click.Option(["--device"], default="auto", show_default=True, help="auto | cpu | cuda | mps."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress output."),
    ]
    cmd = click.Command(model, callback=config_options(r.config)(callback), params=params, help=r.help)
    cmd.params += getattr(cmd.callback, "__click_params__", [])[::-1]
    return cmd


class RetrainGroup(click.Group):
    """Sub-commands are the installed models whose spec names a :class:`Retrainer`, loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_specs())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = _specs().get(name)
        if spec is None:
            return None
        r = _load(spec.retrain, f"model {name!r}: retrain")
        if not isinstance(r, Retrainer):
            from fmb.errors import ModelError

            raise ModelError(f"model {name!r}: retrain {spec.retrain!r} is not an fmb.commands.retrain.Retrainer")
        return make_command(name, r)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, s.description) for n, s in _specs().items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group("retrain", cls=RetrainGroup)
def retrain() -> None:
    """Continue training (fine-tune) a model on a data set: one sub-command per model plugin.

    Every sub-command splits the objects by id into training and validation sets (seeded), warms the
    learning rate up linearly then decays it on a cosine to lr * min_lr_ratio, evaluates every --eval-every
    steps (else once per epoch), stops after --patience evaluations without improvement, and writes the
    best weights, history.json/.csv, loss.png, retrain.json and state.pt (for --resume) in the run folder.
    """
