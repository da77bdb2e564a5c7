"""fmb-aion registers its model and the ``fmb retrain aion`` command through the entry point."""

from fmb.plugins import registry


def test_registered_through_entry_point():
    spec = registry().model("aion")
    assert spec.source.startswith("fmb-aion")
    assert spec.license == "MIT"
    assert set(spec.outputs) == {"image", "spectrum", "joint"}
    assert spec.weights == ("hf:polymathic-ai/aion-base",)


def test_retrain_subcommand_comes_from_the_spec():
    from click.testing import CliRunner

    from fmb.cli import cli

    assert registry().model("aion").retrain == "fmb_aion.commands:RETRAIN"
    res = CliRunner().invoke(cli, ["retrain", "--help"])
    assert res.exit_code == 0 and "aion" in res.output
    res = CliRunner().invoke(cli, ["retrain", "aion", "--help"])
    assert res.exit_code == 0 and "--size" in res.output and "--patience" in res.output


def test_plugin_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, fmb_aion.plugin, fmb_aion.commands; print(any(m in sys.modules for m in ('torch', 'aion')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
