"""docs/python-api.md runs, block by block, and gives the CLI's numbers on the same input."""

import json
import re
import subprocess
import sys
from pathlib import Path

from fmb.testing.cli import fmb_run

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def test_python_api_doc_runs_and_matches_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), ns)
    fmb_run("cli-run", "--no-report", dataset="synthetic:size=60")
    cli_res = json.loads((tmp_path / "cli-run" / "results.json").read_text())
    api = ns["result"]
    assert api.path == tmp_path / "api-run"
    for m, v in cli_res["modalities"].items():
        assert api.metrics[m]["auroc"] == v["metrics"]["auroc"] and api.metrics[m] == v["metrics"]
    assert len(api.scores) == 60 * 3 and set(api.scores["modality"]) == {"image", "spectrum", "joint"}
    assert ns["table"].num_rows == 60 and "joint" in ns["table"].column_names
    assert ns["vectors"]["joint"].shape[0] == 8


def test_import_fmb_stays_light():
    code = "import sys, fmb; bad = [m for m in ('numpy', 'pyarrow', 'fmb.api', 'rich') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
