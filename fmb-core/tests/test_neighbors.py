"""``fmb neighbors``: nearest objects by cosine with their anomaly ranks."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import UsageError
from fmb.probes.neighbors import cosine_neighbours
from fmb.testing.cli import fmb_run


def test_cosine_neighbours_excludes_self_and_bad_rows():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [np.nan, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    idx, sim = cosine_neighbours(X, 0, 3)
    assert idx.tolist() == [5, 1, 2] and sim[0] == pytest.approx(1.0)
    with pytest.raises(UsageError, match="no usable embedding"):
        cosine_neighbours(X, 3, 2)


def test_cli_neighbors(toy, tmp_path):
    r = fmb_run(tmp_path, detector="ecod", dataset="toy:size=40")
    r = CliRunner().invoke(
        cli, ["neighbors", "3", "--run", str(tmp_path), "--modality", "spectrum", "-k", "5", "--json"]
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 6 and rows[0]["object_id"] == 3 and rows[0]["query"]
    assert all(1 <= row["rank (spectrum)"] <= 40 for row in rows)
    assert [row["cosine"] for row in rows[1:]] == sorted((row["cosine"] for row in rows[1:]), reverse=True)
    r = CliRunner().invoke(cli, ["neighbors", "999", "--run", str(tmp_path)])
    assert r.exit_code == 2 and "not in this run" in r.output
    r = CliRunner().invoke(cli, ["neighbors", "3", "--run", str(tmp_path), "-k", "3"])
    assert r.exit_code == 0 and "neighbours of 3" in r.output
