"""``fmb review``: the merged queue, saved labels, active re-ranking, the simulated expert and the web app API."""

import itertools
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy.stats import rankdata

from fmb.cli import cli
from fmb.errors import DataError
from fmb.protocol.metrics import artefact_fraction
from fmb.review import active
from fmb.review.labels import LabelStore, read_labels
from fmb.review.queue import build_queue
from fmb.review.simulate import discovery, expert_label, simulate
from fmb.testing.cli import fmb_run

ARTEFACTS = ("sat_trail", "cosmic_ray", "dead_arm")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs (ecod, iforest; baseline model) on a tiny synthetic survey, with their own FMB home."""
    root = tmp_path_factory.mktemp("review_runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("FMB_HOME", str(root / "home"))
    dirs = []
    for det in ("ecod", "iforest"):
        out = root / det
        fmb_run(out, "--no-report", detector=det, dataset="synthetic:size=60")
        dirs.append(out)
    mp.undo()
    return root, dirs


@pytest.fixture
def home(runs, monkeypatch):
    monkeypatch.setenv("FMB_HOME", str(runs[0] / "home"))
    return runs[1]


def test_artefact_fraction_by_hand():
    scores = np.arange(200, 0, -1, dtype=float)  # object i has rank i + 1
    cls = np.array(["normal"] * 200, dtype=object)
    cls[[0, 3, 9, 10, 60, 150]] = ["cosmic_ray", "lens", "dead_arm", "sat_trail", "cosmic_ray", "dead_arm"]
    out = artefact_fraction(scores, cls, ARTEFACTS)
    assert out == {
        "artefact_fraction@10": 2 / 10,
        "artefact_fraction@50": 3 / 50,
        "artefact_fraction@100": 4 / 100,
        "artefact_fraction@1%": 1 / 2,
    }
    perm = np.random.default_rng(0).permutation(200)  # the order of the rows does not matter
    assert artefact_fraction(scores[perm], cls[perm], ARTEFACTS) == out
    assert artefact_fraction(scores, cls, ()) == {}


def test_run_records_artefact_fraction(home):
    res = json.loads((home[0] / "results.json").read_text())
    assert res["dataset"]["artefact_classes"] == list(ARTEFACTS)
    t = pq.read_table(home[0] / "scores.parquet").to_pydict()
    for mod, entry in res["modalities"].items():
        rows = [(r, c) for m, r, c in zip(t["modality"], t["rank"], t["anomaly_class"]) if m == mod and r]
        top10 = [c for r, c in rows if r <= 10]
        assert entry["metrics"]["artefact_fraction@10"] == pytest.approx(sum(c in ARTEFACTS for c in top10) / 10)


def _systems(dirs):
    """{system: {object_id: (rank, score)}} read straight from scores.parquet."""
    out = {}
    for d in dirs:
        t = pq.read_table(d / "scores.parquet").to_pydict()
        for o, m, s, r in zip(t["object_id"], t["modality"], t["score"], t["rank"]):
            out.setdefault((d.name, m), {})[str(o)] = (r, s)
    return out


def test_queue_merges_top_candidates(home):
    q = build_queue(home, top=5)
    sys_ = _systems(home)
    want = {o for s in sys_.values() for o, (r, _) in s.items() if r <= 5}
    ids = [c.object_id for c in q.candidates]
    assert len(ids) == len(set(ids)) and set(ids) == want and len(q.systems) == len(sys_) == 6
    for c in q.candidates:
        for label, rank in c.ranks.items():
            run, mod = label.split(": ")
            assert sys_[(run, mod)][c.object_id][0] == rank
        assert "redshift" in c.catalogue and "anomaly_class" not in c.catalogue
    # fused score: mean percentile over the systems, computed here with scipy
    pct = {}
    for s in sys_.values():
        oids = list(s)
        p = rankdata([s[o][1] for o in oids]) / len(oids)
        for o, v in zip(oids, p):
            pct.setdefault(o, []).append(v)
    fused = {o: np.mean(pct[o]) for o in want}
    assert ids == sorted(want, key=lambda o: (-fused[o], o))
    assert [c.object_id for c in build_queue(home[::-1], top=5).candidates] == ids


def test_labels_saved_atomically_and_reloaded(tmp_path):
    path = tmp_path / "labels.parquet"
    store = LabelStore(path)
    store.set("7", "interesting", "arc?", 1)
    store.set("3", "artefact", "", 2)
    store.set("7", "boring", "no", 3)  # relabelled: the later label wins
    again = read_labels(path)
    assert {o: (x.label, x.note, x.position) for o, x in again.items()} == {
        "3": ("artefact", "", 2),
        "7": ("boring", "no", 3),
    }
    assert pq.read_schema(path).metadata[b"fmb_labels_version"] == b"1"
    assert not [p for p in tmp_path.iterdir() if p.name != "labels.parquet"]  # no temporary left behind
    csv = tmp_path / "export.csv"
    csv.write_bytes(store.csv_bytes())
    assert {o: x.label for o, x in read_labels(csv).items()} == {"3": "artefact", "7": "boring"}
    with pytest.raises(DataError, match="label 'great'"):
        store.set("1", "great")
    bad = tmp_path / "bad.csv"
    bad.write_text("object_id,label\n1,interesting\n2,weird\n")
    with pytest.raises(DataError, match=r"bad.csv row 2: label 'weird'"):
        read_labels(bad)
    bad.write_text("object_id,label\n1,interesting\n1,boring\n")
    with pytest.raises(DataError, match="labelled twice"):
        read_labels(bad)
    other = LabelStore(tmp_path / "other.parquet")
    other.set("3", "interesting")  # newer than the store's "3"
    assert store.merge(read_labels(tmp_path / "other.parquet")) == 1
    assert read_labels(path)["3"].label == "interesting"


def test_neighbour_score_formula():
    s = np.array([5.0, 5.0, 2.0])
    u = np.array([5.0, 0.0, 0.0])
    near = active.neighbour_score(s, u, np.zeros(3))
    assert near == pytest.approx(s * (0.1 + 0.85 * u / 5))  # tanh(arctanh(f)) = f at d = 0
    far = active.neighbour_score(s, u, np.full(3, 10.0 / active.ALPHA))
    assert far == pytest.approx(s, rel=1e-6)


def test_rerank_pushes_down_neighbours_of_artefacts():
    rng = np.random.default_rng(1)
    # clusters A (rows 0-9), B (10-19), C (20-39) around e1, e2, e3; A most anomalous, then B, then C
    centres = np.repeat(np.eye(4)[:3], [10, 10, 20], axis=0)
    x = centres + rng.normal(0, 0.05, (40, 4))
    fused = np.linspace(1.0, 0.05, 40)
    plain = active.rerank(x, fused, {}, seed=0)
    assert active.order(plain, fused, set()) == list(range(40))
    assert np.isnan(plain.relevance).all()
    labels = {0: "artefact", 1: "artefact", 2: "artefact", 10: "interesting", 11: "interesting", 12: "interesting"}
    ranked = active.rerank(x, fused, labels, seed=0)
    order = active.order(ranked, fused, set(labels))
    pos = {i: n for n, i in enumerate(order)}
    assert order[0] == 13 and max(pos[i] for i in range(13, 20)) < min(pos[i] for i in range(3, 10))
    assert ranked.relevance[13:20].min() > ranked.relevance[3:10].max()
    assert active.rerank(x, fused, labels, seed=0).score == pytest.approx(ranked.score)
    # "unsure" does not train: the scores stay the plain ones
    assert active.rerank(x, fused, {0: "unsure"}, seed=0).score == pytest.approx(plain.score)


def test_rerank_waits_for_first_interesting_label():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3))
    fused = np.linspace(1.0, 0.1, 30)
    plain = active.rerank(x, fused, {}, seed=0)
    assert plain.score == pytest.approx(5.0 * (fused - 0.1) / 0.9)
    # cold start: boring and artefact labels alone leave S (and the fused order) untouched
    cold = active.rerank(x, fused, {0: "boring", 1: "artefact", 2: "unsure"}, seed=0)
    assert cold.score == pytest.approx(plain.score) and np.isnan(cold.relevance).all()
    warm = active.rerank(x, fused, {0: "boring", 1: "artefact", 3: "interesting"}, seed=0)
    assert not np.isnan(warm.relevance).any() and warm.score != pytest.approx(plain.score)


def test_queue_features_are_log_ranks(home):
    q = build_queue(home, top=10)
    x = active.queue_features(q)
    assert x.shape == (len(q.candidates), len(q.systems))
    c = q.candidates[0]
    for j, name in enumerate(q.systems):
        if name in c.ranks:
            assert x[0, j] == pytest.approx(np.log(c.ranks[name]))


def test_simulated_expert(home, tmp_path):
    assert [expert_label(c, ARTEFACTS) for c in ("lens", "cosmic_ray", "normal", "mismatch")] == [
        "interesting",
        "artefact",
        "boring",
        "interesting",
    ]
    q = build_queue(home, top=10)
    truth = [c.truth for c in q.candidates]
    plain = discovery(q, None, 15, False)
    assert plain == np.cumsum([t not in ARTEFACTS and t != "normal" for t in truth[:15]]).tolist()
    res = simulate(q, 15, tmp_path, seed=0)
    act = res["curve_active"]
    assert len(act) == 15 and all(b - a in (0, 1) for a, b in itertools.pairwise(act))
    assert act[-1] <= res["interesting_in_queue"] and res["curve_plain"] == plain
    assert json.loads((tmp_path / "simulation.json").read_text())["found_active"] == act[-1]
    assert (tmp_path / "simulation.png").stat().st_size > 1000
    # the report shows the curves of a run that has them (RUN/review/)
    from fmb.report.build import review_section
    from fmb.report.collect import load_runs

    assert review_section(load_runs(home)) is None
    simulate(q, 5, home[0] / "review", seed=0)
    sec = review_section(load_runs(home))
    assert sec is not None and "data:image/png" in sec.body and "first 5 inspected" in sec.body


def test_app_api_and_safety(home, tmp_path):
    TestClient = pytest.importorskip("starlette.testclient", reason="needs the review extra").TestClient

    from fmb.review.app import ReviewSession, make_app

    q = build_queue(home, top=5)
    store = LabelStore(tmp_path / "labels.parquet")
    client = TestClient(make_app(ReviewSession(q, store, tmp_path)))
    page = client.get("/")
    assert (
        page.status_code == 200
        and "/static/review.js" in page.text
        and "http" not in page.text.split("<footer>")[0].replace("http-equiv", "")
    )
    state = client.get("/api/queue").json()
    first = state["next"][0]["object_id"]
    assert first == q.candidates[0].object_id and state["labelled"] == 0
    assert client.post("/api/label", json={"object_id": "no-such-id", "label": "boring"}).status_code == 404
    assert client.post("/api/label", json={"object_id": first, "label": "great"}).status_code == 400
    assert client.post("/api/label", content=b"{not json").status_code == 400
    r = client.post("/api/label", json={"object_id": first, "label": "artefact", "note": "trail"})
    assert r.status_code == 200 and r.json()["labelled"] == 1
    assert first not in [c["object_id"] for c in r.json()["next"]]
    assert read_labels(store.path)[first].note == "trail"  # saved before the answer
    assert f'"{first}","artefact","trail"' in client.get("/labels.csv").text
    img = client.get("/img/0.png")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content[:4] == b"\x89PNG"
    assert client.get("/static/review.css").status_code == 200
    for bad in (
        "/static/../labels.parquet",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/img/9999.png",
        "/img/..%2f..%2fetc%2fpasswd",
        "/img/-1.png",
        "/labels.parquet",
        "/cards/card-00000.png",
        "/static/../../../../etc/passwd",
    ):
        resp = client.get(bad)
        assert resp.status_code == 404, bad
        assert b"root:" not in resp.content and b"PAR1" not in resp.content[:4]


def test_cli_review_refusals(home, tmp_path, runs):
    other = tmp_path / "other"
    r = fmb_run(other, "--no-report", detector="ecod", dataset="synthetic:size=40")
    r = CliRunner().invoke(cli, ["review", str(home[0]), str(other), "--simulate"])
    assert r.exit_code == 2 and "different data sets" in r.output
    bad = tmp_path / "prior.csv"
    bad.write_text("object_id,label\nnot-an-object,interesting\n")
    r = CliRunner().invoke(cli, ["review", str(home[0]), "--labels", str(bad), "--port", "0"])
    assert r.exit_code == 2 and "not-an-object is not in the review queue" in r.output
