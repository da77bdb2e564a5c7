"""`fmb show` writes a PNG of one object that decodes and has the expected size."""

from click.testing import CliRunner
from PIL import Image

from fmb.cli import cli


def test_show_writes_a_decodable_png(toy, tmp_path):
    out = tmp_path / "obj.png"
    r = CliRunner().invoke(cli, ["show", "toy:size=10", "--object-id", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 500 and im.size[1] > 300
    assert not list(tmp_path.glob(".*tmp"))


def test_show_is_deterministic(toy, tmp_path):
    for name in ("a.png", "b.png"):
        CliRunner().invoke(cli, ["show", "toy:size=10", "--index", "2", "--out", str(tmp_path / name)])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_show_unknown_object_is_one_line(toy, tmp_path):
    r = CliRunner().invoke(cli, ["show", "toy:size=10", "--object-id", "999", "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "Error: no object with object_id 999" in r.output
