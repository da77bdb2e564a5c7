"""`fmb report` and the report `fmb run` writes: every section, images that decode, nothing on the network."""

import base64
import io
import json
import shutil
from html.parser import HTMLParser

import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL import Image

from fmb.cli import cli
from fmb.data import canonical as C
from fmb.testing.cli import fmb_cli, fmb_run
from fmb.testing.toy import ToyDataset

SECTIONS = ("runs", "metrics", "curves", "scores", "recall", "embeddings", "gallery", "agreement")


def invoke(*args):
    return fmb_cli(*args).output


def run(out, *extra, dataset="toy:size=120"):
    return fmb_run(out, *extra, dataset=dataset).output


class Page(HTMLParser):
    """Collects ids, image sources, links and the visible text of a page."""

    def __init__(self):
        super().__init__()
        self.ids, self.srcs, self.hrefs, self.text, self.classes = set(), [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])
        self.classes.append(a.get("class") or "")

    def handle_data(self, data):
        self.text.append(data)


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    page.all_text = " ".join(page.text)
    return page


def decode_images(page, base):
    sizes = []
    for src in page.srcs:
        if src.startswith("data:image/png;base64,"):
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
        else:
            data = (base / src).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            sizes.append(im.size)
    return sizes


def assert_offline(page, path):
    raw = path.read_text(encoding="utf-8")
    assert "http://" not in raw and "https://" not in raw
    assert all(not u.startswith(("http:", "https:", "//")) for u in page.srcs + page.hrefs)


def test_run_writes_a_report_with_every_section(toy, tmp_path):
    out = run(tmp_path / "run")
    report = tmp_path / "run" / "report.html"
    assert f"report: {report}" in out and report.exists()
    page = parse(report)
    assert set(SECTIONS) <= page.ids
    sizes = decode_images(page, report.parent)
    # 5 figures + per modality 8 cut-outs and 8 spectra (3 modalities share objects: at least 8 of each kind)
    assert len(sizes) >= 5 + 3 * 8 * 2 and all(w > 20 and h > 20 for w, h in sizes)
    assert_offline(page, report)
    assert "unavailable" not in page.all_text and "not available" not in page.all_text
    for name in ("roc_pr", "scores", "class_recall", "embedding_map", "agreement"):
        with Image.open(tmp_path / "run" / "figures" / f"{name}.png") as im:
            assert im.format == "PNG" and not im.info.get("Software")
    assert len(list((tmp_path / "run" / "figures" / "gallery").glob("object-*-spectrum.png"))) >= 8
    assert "Spearman" in page.all_text and "dead_arm" not in page.all_text  # toy classes only
    assert "blob" in page.all_text or "spike" in page.all_text


def test_report_command_options_and_determinism(toy, tmp_path):
    run(tmp_path / "run", "--no-report")
    assert not (tmp_path / "run" / "report.html").exists()
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for out in (a, b):
        assert f"report: {out}" in invoke(
            "report", tmp_path / "run", "--out", out, "--top-k", 8, "--embedding-map", "pca"
        )
    assert a.read_bytes() == b.read_bytes()  # figures and page are deterministic
    page = parse(a)
    assert page.classes.count("card") == 3 * 8
    raw = a.read_text(encoding="utf-8")
    assert "PCA" in page.all_text and "<b>#8</b>" in raw and "<b>#9</b>" not in raw  # the gallery's own ranks


def test_report_of_two_runs_compares_every_system(toy, tmp_path):
    run(tmp_path / "runs" / "iforest", "--no-report")
    fmb_run(tmp_path / "runs" / "knn", "--modality", "joint", "--no-report", detector="knn")
    out = invoke(
        "report", tmp_path / "runs" / "iforest", tmp_path / "runs" / "knn", "--top-k", 8, "--embedding-map", "pca"
    )
    report = tmp_path / "runs" / "report.html"
    assert f"report: {report}" in out
    page = parse(report)
    assert "agreement" in page.ids and "knn: joint" in page.all_text and "iforest: spectrum" in page.all_text
    assert (tmp_path / "runs" / "figures" / "agreement.png").exists()
    decode_images(page, report.parent)


def test_unlabelled_run_still_makes_a_report(tmp_path):
    table = ToyDataset(size=60)._table
    table = table.drop_columns([c for c in C.LABEL_COLUMNS if c in table.column_names])
    pq.write_table(table, tmp_path / "objects.parquet")
    run(tmp_path / "run", "--no-report", dataset=f"parquet:path={tmp_path / 'objects.parquet'}")
    invoke("report", tmp_path / "run", "--top-k", 8, "--embedding-map", "pca")
    report = tmp_path / "run" / "report.html"
    page = parse(report)
    assert {"runs", "metrics", "gallery", "embeddings", "scores"} <= page.ids
    assert "has no labels" in page.all_text and "unknown (no labels)" in page.all_text
    assert not (tmp_path / "run" / "figures" / "roc_pr.png").exists()
    decode_images(page, report.parent)
    assert_offline(page, report)


def test_gone_cache_and_moved_data_degrade_to_notes(toy, tmp_path, fmb_home):
    run(tmp_path / "run", "--no-report")
    shutil.rmtree(fmb_home / "embeddings")
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    res["config"]["dataset"] = "no-such-dataset"
    (tmp_path / "run" / "results.json").write_text(json.dumps(res))
    invoke("report", tmp_path / "run", "--top-k", 8, "--embedding-map", "pca")
    text = parse(tmp_path / "run" / "report.html").all_text
    assert "embedding map unavailable: the embedding cache" in text
    assert "gallery unavailable: cannot open data set 'no-such-dataset' again" in text


def test_not_a_run_folder_is_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert r.exit_code == 2 and r.output.startswith("Error:") and "not an fmb run folder" in r.output


def test_matrix_folder_makes_one_combined_page(toy, tmp_path):
    fmb_run(tmp_path / "mx", "--detector", "knn", "--modality", "joint", "--no-report")
    systems = sorted(p.name for p in (tmp_path / "mx").iterdir() if (p / "results.json").exists())
    assert len(systems) == 2
    out = invoke("report", tmp_path / "mx", "--top-k", 4, "--embedding-map", "pca")
    report = tmp_path / "mx" / "report.html"
    assert f"report: {report}" in out
    page = parse(report)
    raw = report.read_text(encoding="utf-8")
    assert {"leaderboard", "metrics", "curves", "agreement", "systems"} <= page.ids
    assert raw.index('id="leaderboard"') < raw.index('id="curves"') < raw.index('id="systems"')
    assert raw.count('<details class="system"') == 2 and '<details class="system" open' not in raw
    assert (tmp_path / "mx" / "figures" / "roc_pr_compare.png").exists()
    assert raw.count("roc_pr_compare.png") == 1  # one comparison figure, not one per system
    decode_images(page, report.parent)
    assert_offline(page, report)
