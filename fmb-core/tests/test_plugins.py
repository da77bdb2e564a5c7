"""Plugin loading: default plugins, entry points, broken plugins, duplicates, selection."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint

import click
import pytest

import fmb.plugins as P
from fmb import hookimpl
from fmb.specs import DetectorSpec, ModelSpec
from fmb.testing import registered_plugin


@pytest.fixture
def fresh_pm(monkeypatch):
    """A plugin manager rebuilt from scratch for this test, restored afterwards."""
    monkeypatch.setattr(P, "_pm", None)
    monkeypatch.setattr(P, "_info", {})
    yield
    P._pm = None


def fake_entry_points(monkeypatch, *eps):
    real = P.entry_points

    def patched(group):
        return list(real(group=group)) + [EntryPoint(name=n, value=v, group="fmb") for n, v in eps]

    monkeypatch.setattr(P, "entry_points", patched)


class DetectorPlugin:
    def __init__(self, name="zscore"):
        self.name = name

    @hookimpl
    def register_detectors(self, register):
        register(DetectorSpec(name=self.name, description="test detector", loader="fmb.params:parse_value"))


def test_builtins_and_installed_model_plugins_are_registered():
    reg = P.registry()
    assert {"synthetic", "euclid-desi", "parquet"} <= set(reg.names("dataset"))
    assert {"iforest", "lof", "knn", "ecod", "copod", "hbos", "pca", "ocsvm"} <= set(reg.names("detector"))
    assert {"baseline", "astropt", "astroclip", "aion"} <= set(reg.names("model"))
    assert reg.model("baseline").source == "fmb-core (fmb.builtin.models)"
    dists = {i.distribution for i in P.plugin_info()}
    assert {"fmb-core", "fmb-astropt", "fmb-astroclip", "fmb-aion"} <= dists


def test_plugin_registered_for_one_test_only():
    with registered_plugin(DetectorPlugin(), "zscore-plugin"):
        assert P.registry().detector("zscore").source == "test-plugin (zscore-plugin)"
    assert "zscore" not in P.registry().names("detector")


def test_unknown_name_suggests_close_names():
    with pytest.raises(P.UnknownNameError, match="did you mean iforest"):
        P.registry().detector("iforst")


def test_builtin_name_taken_by_a_plugin_is_an_error_naming_both(capsys):
    with registered_plugin(DetectorPlugin("knn"), "dup-plugin"):
        reg = P.registry()
    err = capsys.readouterr().err
    assert (
        "detector name 'knn' is registered by fmb-core (fmb.builtin.detectors) and by test-plugin (dup-plugin)" in err
    )
    with pytest.raises(P.PluginError, match=r"fmb-core \(fmb.builtin.detectors\).*test-plugin \(dup-plugin\)"):
        reg.detector("knn")  # neither side wins
    assert reg.detector("lof").source.startswith("fmb-core")  # other names keep working
    assert reg.problems("dup-plugin") == [
        "conflict: detector 'knn' also registered by fmb-core (fmb.builtin.detectors)"
    ]
    assert P.registry().detector("knn").source.startswith("fmb-core")  # usable again once the plugin is gone


def test_bad_spec_is_skipped_with_one_warning(capsys):
    class BadModel:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="bad", description="x", loader="a:b", modalities=("image",), outputs={}))

    with registered_plugin(BadModel(), "bad-model"):
        assert "bad" not in P.registry().names("model")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test-plugin (bad-model)" in err[0] and "outputs" in err[0]


class HalfBroken:
    """Registers a valid model, then an invalid one; and a valid detector."""

    @hookimpl
    def register_models(self, register):
        register(
            ModelSpec(name="good-first", description="x", loader="a:b", modalities=("image",), outputs={"image": 2})
        )
        register(
            ModelSpec(name="bad-second", description="x", loader="a:b", modalities=("radio",), outputs={"image": 2})
        )

    @hookimpl
    def register_detectors(self, register):
        register(DetectorSpec(name="half-det", description="x", loader="a:b"))


def test_failed_registration_is_rolled_back_whole(capsys):
    with registered_plugin(HalfBroken(), "half"):
        reg = P.registry()
    assert "good-first" not in reg.names("model") and "half-det" not in reg.names("detector")
    assert "bad-second" not in reg.names("model")
    assert "baseline" in reg.names("model")
    assert reg.failed["half"].startswith("model 'bad-second': modalities")
    assert reg.problems("half") == [f"rolled back: {reg.failed['half']}"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test-plugin (half)" in err[0] and "none of its models" in err[0]


def test_one_name_registered_twice_by_one_plugin_rolls_it_back(capsys):
    class Twice:
        @hookimpl
        def register_detectors(self, register):
            register(DetectorSpec(name="twice", description="x", loader="a:b"))
            register(DetectorSpec(name="twice", description="y", loader="a:c"))

    with registered_plugin(Twice(), "twice-plugin"):
        reg = P.registry()
    assert "twice" not in reg.names("detector") and "twice" not in reg.conflicts["detector"]
    assert "registers detector 'twice' twice" in capsys.readouterr().err


def test_hook_that_raises_rolls_back_what_it_registered_before(capsys):
    class Raises:
        @hookimpl
        def register_detectors(self, register):
            register(DetectorSpec(name="early", description="x", loader="a:b"))
            raise RuntimeError("boom")

    with registered_plugin(Raises(), "raises"):
        reg = P.registry()
    assert "early" not in reg.names("detector")
    assert "register_detectors failed: RuntimeError: boom" in capsys.readouterr().err


# ---------------------------------------------------------------- real entry points (a dist-info on sys.path)

PLUGIN_CODE = """from fmb import hookimpl
from fmb.specs import DetectorSpec, ModelSpec

@hookimpl
def register_models(register):
    for name in {models!r}:
        register(ModelSpec(name=name, description="{dist}", loader="{module}:load", modalities=("image",),
                           outputs={{"image": 2}}))

@hookimpl
def register_detectors(register):
    for name in {detectors!r}:
        register(DetectorSpec(name=name, description="{dist}", loader="{module}:load"))
"""


def install_dist(root, dist, ep_name, module, models=(), detectors=(), code=None):
    """A real installed distribution: ``module.py`` plus ``dist-1.0.dist-info`` with an ``fmb`` entry point."""
    root.mkdir(exist_ok=True)
    (root / f"{module}.py").write_text(
        code or PLUGIN_CODE.format(models=list(models), detectors=list(detectors), dist=dist, module=module)
    )
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[fmb]\n{ep_name} = {module}\n")


@pytest.fixture
def dists(tmp_path, monkeypatch, fresh_pm):
    """Installs (onto sys.path) a genuine model plugin and an impostor whose entry point sorts first."""
    root = tmp_path / "site"
    install_dist(root, "fmb-genuine", "genuine", "fmb_genuine_plugin", models=["galaxy"], detectors=["gdet"])
    install_dist(root, "fmb-impostor", "aaa-impostor", "fmb_impostor_plugin", models=["galaxy"])
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "fmb-genuine,fmb-impostor")
    yield root
    for mod in ("fmb_genuine_plugin", "fmb_impostor_plugin", "fmb_twin_plugin"):
        sys.modules.pop(mod, None)


def test_impostor_cannot_take_over_a_plugin_model(dists, capsys):
    reg = P.registry()
    both = "model name 'galaxy' is registered by fmb-genuine (genuine) and by fmb-impostor (aaa-impostor)"
    assert both in capsys.readouterr().err
    with pytest.raises(P.PluginError, match=re.escape(both)):
        reg.model("galaxy")
    assert reg.detector("gdet").source == "fmb-genuine (genuine)"  # the rest of the plugin works


def test_load_plugins_selects_one_of_two_conflicting(dists, monkeypatch):
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "fmb-genuine")
    assert P.registry().model("galaxy").source == "fmb-genuine (genuine)"


def test_same_entry_point_name_from_two_distributions(dists, monkeypatch):
    install_dist(dists, "fmb-twin", "genuine", "fmb_twin_plugin", models=["galaxy", "twin-only"])
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "genuine")  # the entry-point name selects both
    reg = P.registry()
    assert reg.conflicts["model"]["galaxy"] == ["fmb-genuine (genuine)", "fmb-twin (genuine@fmb-twin)"]
    assert reg.model("twin-only").source == "fmb-twin (genuine@fmb-twin)"


def test_models_and_plugins_commands_show_the_conflict(dists):
    from click.testing import CliRunner

    from fmb.cli import cli

    r = CliRunner().invoke(cli, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["galaxy"]["conflict"] == ["fmb-genuine (genuine)", "fmb-impostor (aaa-impostor)"]
    assert rows["baseline"]["conflict"] == []
    r = CliRunner().invoke(cli, ["plugins", "--json"])
    plugins = {row["name"]: row for row in json.loads(r.stdout)}
    assert plugins["genuine"]["problems"] == ["conflict: model 'galaxy' also registered by fmb-impostor (aaa-impostor)"]
    assert plugins["genuine"]["registers"] == {"detector": ["gdet"]}
    assert plugins["fmb.builtin.models"]["problems"] == []


def test_load_plugins_name_matching_nothing_warns(dists, monkeypatch, capsys):
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "fmb-genuine,fmb-genuin")
    reg = P.registry()
    err = capsys.readouterr().err
    assert "FMB_LOAD_PLUGINS names 'fmb-genuin', which matches no installed fmb plugin" in err
    assert "genuine (fmb-genuine)" in err and "'fmb-genuine'," not in err
    assert reg.model("galaxy").source == "fmb-genuine (genuine)"


def test_loader_that_does_not_import_is_one_line_exit_2(dists, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from fmb.cli import cli

    monkeypatch.setenv("FMB_LOAD_PLUGINS", "fmb-genuine")
    monkeypatch.setenv("FMB_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(cli, ["embed", "--model", "galaxy", "--dataset", "synthetic:size=60", "-q"])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("Error: model 'galaxy' from fmb-genuine (genuine): loader 'fmb_genuine_plugin:load'")
    assert "has no attribute 'load'" in lines[-1] and "Traceback" not in r.output


def test_loader_module_missing_names_the_spec():
    from fmb.specs import LoaderError

    spec = ModelSpec(
        name="ghost",
        description="x",
        loader="fmb_no_such_module.model:load",
        modalities=("image",),
        outputs={"image": 2},
        source="fmb-ghost (ghost)",
    )
    with pytest.raises(
        LoaderError,
        match=r"^model 'ghost' from fmb-ghost \(ghost\): loader "
        r"'fmb_no_such_module.model:load' does not import: ModuleNotFoundError",
    ):
        spec.load()
    with pytest.raises(LoaderError, match="names a int, not a callable"):
        ModelSpec(
            name="g", description="x", loader="fmb.cli:EXIT_USAGE", modalities=("image",), outputs={"image": 2}
        ).load()


def test_raise_plugin_errors_help_is_one_line(tmp_path):
    root = tmp_path / "site"
    install_dist(root, "fmb-broken", "broken", "fmb_broken_plugin", code="import fmb_no_such_dependency\n")
    env = dict(
        os.environ,
        FMB_RAISE_PLUGIN_ERRORS="1",
        FMB_LOAD_PLUGINS="broken",
        PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fmb.cli", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: plugin 'broken' from fmb-broken failed to import: ModuleNotFoundError: "
        "No module named 'fmb_no_such_dependency'"
    ]


def test_broken_entry_point_is_skipped(monkeypatch, fresh_pm, capsys):
    fake_entry_points(monkeypatch, ("broken", "fmb_no_such_module.plugin"))
    reg = P.registry()
    err = capsys.readouterr().err
    assert "plugin 'broken'" in err and "failed to import" in err and "ModuleNotFoundError" in err
    assert "baseline" in reg.names("model")


def test_broken_entry_point_raises_with_env(monkeypatch, fresh_pm):
    monkeypatch.setenv("FMB_RAISE_PLUGIN_ERRORS", "1")
    fake_entry_points(monkeypatch, ("broken", "fmb_no_such_module.plugin"))
    with pytest.raises(P.PluginError, match="broken"):
        P.get_plugin_manager()


def test_misspelled_hook_is_caught(capsys):
    class Misspelled:
        @hookimpl
        def register_modells(self, register):  # typo: no such hook
            pass

    pm = P.get_plugin_manager()
    assert not P.register_plugin(pm, Misspelled(), "typo", "typo-dist", "1")
    assert "register_modells" in capsys.readouterr().err
    assert not pm.has_plugin("typo")


def test_load_only_selected_plugins(monkeypatch, fresh_pm):
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "astroclip")
    names = P.registry().names("model")
    assert "astroclip" in names and "astropt" not in names and "aion" not in names
    assert "baseline" in names  # built-ins always load


def test_load_no_third_party_plugins(monkeypatch, fresh_pm):
    monkeypatch.setenv("FMB_LOAD_PLUGINS", "")
    assert P.registry().names("model") == ["baseline", "baseline-strong"]  # the built-in floors only


def test_trace_plugins(monkeypatch, fresh_pm, capsys):
    monkeypatch.setenv("FMB_TRACE_PLUGINS", "1")
    P.registry()  # Registry calls implementations directly; trace the hook call made by the CLI
    P.get_plugin_manager().hook.register_commands(cli=click.Group("fmb"))
    assert "fmb-trace:" in capsys.readouterr().err
