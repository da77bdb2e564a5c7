"""The plugin docs stay true: the hook reference matches fmb.hookspecs, and the code in the
tutorial, dataset and detector pages runs and passes the conformance kit."""

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

from fmb import hookspecs
from fmb.testing import registered_plugin
from fmb.testing.conformance import check_dataset, check_detector, check_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins"
HEADING = re.compile(r"^### `(\w+)\((.*)\) -> (.+)`$", re.M)
BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```$", re.M | re.S)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _ann(a) -> str:
    return a if isinstance(a, str) else inspect.formatannotation(a)


def spec_signatures() -> dict[str, str]:
    """Hook name -> '(params) -> return' from the hook specs (annotations as written)."""
    out = {}
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "fmb_spec"):
            sig = inspect.signature(fn)
            params = ", ".join(f"{p.name}: {_ann(p.annotation)}" for p in sig.parameters.values())
            out[name] = f"({params}) -> {_ann(sig.return_annotation)}"
    return out


def documented_signatures() -> dict[str, str]:
    text = (DOCS / "hooks.md").read_text()
    return {m[1]: f"({m[2]}) -> {m[3]}" for m in HEADING.finditer(text)}


def test_every_hook_is_documented_with_its_signature():
    specs, docs = spec_signatures(), documented_signatures()
    assert specs, "no hook specs found"
    missing = sorted(set(specs) - set(docs))
    assert not missing, f"hooks missing from docs/plugins/hooks.md: {missing}"
    unknown = sorted(set(docs) - set(specs))
    assert not unknown, f"docs/plugins/hooks.md documents hooks that do not exist: {unknown}"
    for name in specs:
        assert docs[name] == specs[name], f"{name}: documented {docs[name]!r}, hookspec says {specs[name]!r}"


def test_reference_documents_the_environment_and_json():
    text = (DOCS / "hooks.md").read_text()
    for needle in (
        "FMB_TRACE_PLUGINS=1",
        "FMB_LOAD_PLUGINS",
        "FMB_RAISE_PLUGIN_ERRORS",
        "fmb plugins --json",
        '"hooks"',
        "pytest11",
    ):
        assert needle in text


def extract(doc: str, dest: Path) -> dict[str, str]:
    """Write the doc's ``lang file=PATH`` code blocks under ``dest``; returns path -> code."""
    blocks = {m[2]: m[3] for m in BLOCK.finditer((DOCS / doc).read_text())}
    assert blocks, f"no file= code blocks in {doc}"
    for rel, code in blocks.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    return blocks


@pytest.fixture
def importable(monkeypatch):
    """``importable(folder)`` puts a folder on sys.path for one test and forgets its modules afterwards."""
    before = set(sys.modules)

    def add(folder: Path) -> None:
        monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()

    yield add
    for name in set(sys.modules) - before:
        if name.startswith(("fmb_mymodel", "fmb_mydata", "fmb_mydet")):
            del sys.modules[name]


def test_model_tutorial_code_runs_and_conforms(tmp_path, importable):
    blocks = extract("model-tutorial.md", tmp_path)
    assert {
        "pyproject.toml",
        "src/fmb_mymodel/plugin.py",
        "src/fmb_mymodel/model.py",
        "tests/test_conformance.py",
    } <= set(blocks)
    meta = tomllib.loads(blocks["pyproject.toml"])
    assert meta["project"]["entry-points"]["fmb"] == {"mymodel": "fmb_mymodel.plugin"}
    (tmp_path / "src/fmb_mymodel/__init__.py").write_text("")
    importable(tmp_path / "src")
    plugin = importlib.import_module("fmb_mymodel.plugin")
    with registered_plugin(plugin, "mymodel", "fmb-mymodel"):
        results = {r.check: r.status for r in check_model("mymodel")}
        # the tutorial model has no weights: nothing to seed, nothing to round-trip
        assert results.pop("weights_roundtrip") == "skipped" and results.pop("seeded") == "skipped"
        assert set(results.values()) == {"passed"}
        path = tmp_path / "tests/test_conformance.py"
        spec = importlib.util.spec_from_file_location("fmb_mymodel_tutorial_tests", path)
        test_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(test_module)
        [mark] = test_module.test_conformance.pytestmark
        assert len(mark.args[1]) == len(results) + 2
        for param in mark.args[1]:
            try:
                test_module.test_conformance(param.values[0])
            except pytest.skip.Exception:
                assert param.id.endswith(("weights_roundtrip", "seeded"))


def test_dataset_page_code_conforms(tmp_path, importable):
    extract("dataset.md", tmp_path)
    importable(tmp_path)
    with registered_plugin(importlib.import_module("fmb_mydata"), "mydata"):
        check_dataset("mydata", size=64)


def test_detector_page_code_conforms(tmp_path, importable):
    extract("detector.md", tmp_path)
    importable(tmp_path)
    with registered_plugin(importlib.import_module("fmb_mydet"), "mydet"):
        check_detector("mydet", k=3)
