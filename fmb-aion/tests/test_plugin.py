"""fmb-aion registers its model and the ``fmb retrain aion`` command through the entry point."""

import click

from fmb.plugins import registry
from fmb_aion.commands import add_to, retrain_aion


def test_registered_through_entry_point():
    spec = registry().model("aion")
    assert spec.source.startswith("fmb-aion")
    assert spec.license == "MIT"
    assert set(spec.outputs) == {"image", "spectrum", "joint"}
    assert spec.weights == ("hf:polymathic-ai/aion-base",)


def test_retrain_group_created_or_shared():
    bare = click.Group("fmb")
    add_to(bare)
    assert bare.commands["retrain"].commands["aion"] is retrain_aion

    add_to(None)  # no CLI: nothing to do

    shared = click.Group("fmb")

    @click.group("retrain")
    def retrain():
        """Made by another plugin."""

    @retrain.command("astropt")
    def astropt():
        """Another plugin's subcommand."""

    shared.add_command(retrain)
    add_to(shared)
    assert shared.commands["retrain"] is retrain
    assert set(retrain.commands) == {"astropt", "aion"}


def test_plugin_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, fmb_aion.plugin, fmb_aion.commands; "
            "print(any(m in sys.modules for m in ('torch', 'aion')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
