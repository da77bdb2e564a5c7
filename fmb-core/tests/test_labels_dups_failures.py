"""Unlabelled objects, duplicate embedding rows and an output that cannot be scored, through run_system."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from sklearn.metrics import average_precision_score

from fmb.plugins import registry
from fmb.protocol.run import RunConfig, run_system
from fmb.reporting import Reporter, summary_table
from fmb.testing.survey_table import GRID_OPTIONS, survey_table


def _run(path, detector, modality, out, params=None):
    console = Console(record=True, width=200)
    cfg = RunConfig(
        model="baseline",
        detector=detector,
        detector_params=params or {},
        dataset="parquet",
        dataset_options={"path": str(path), **dict(o.split("=") for o in GRID_OPTIONS.split(","))},
        modality=modality,
        output=str(out),
    )
    res = run_system(registry(), cfg, out, Reporter(console=console, quiet=True))
    return res, pq.read_table(out / "scores.parquet"), console.export_text()


def test_null_labels_are_left_out_of_the_metrics_and_counted(tmp_path, fmb_home):
    t = survey_table(80, seed=3, n_anom=12)
    y = t.column("is_anomaly").to_pylist()
    y[40:] = [None] * 40
    pq.write_table(
        t.set_column(t.schema.get_field_index("is_anomaly"), "is_anomaly", pa.array(y, pa.bool_())),
        tmp_path / "p.parquet",
    )
    res, scores, log = _run(tmp_path / "p.parquet", "iforest", "image", tmp_path / "out")
    m = res["modalities"]["image"]["metrics"]
    s = scores.column("score").to_numpy()
    labelled = np.array([v is not None for v in y])
    assert m["n_unlabelled"] == 40 and m["n_objects"] == 40 and res["dataset"]["n_unlabelled"] == 40
    assert m["n_anomalies"] == sum(v is True for v in y)
    assert m["average_precision"] == average_precision_score(np.array(y[:40], bool), s[labelled])
    assert log.count("no is_anomaly label") == 1


def test_flagged_anomaly_without_class_is_unknown_in_scores_and_per_class(tmp_path, fmb_home):
    t = survey_table(60, seed=4, n_anom=6)
    cls = t.column("anomaly_class").to_pylist()
    flagged = [i for i, v in enumerate(t.column("is_anomaly").to_pylist()) if v]
    cls[flagged[0]] = None
    cls[flagged[1]] = "normal"
    pq.write_table(
        t.set_column(t.schema.get_field_index("anomaly_class"), "anomaly_class", pa.array(cls, pa.string())),
        tmp_path / "p.parquet",
    )
    res, scores, _ = _run(tmp_path / "p.parquet", "iforest", "image", tmp_path / "out")
    pc = res["modalities"]["image"]["metrics"]["per_class"]
    assert pc["unknown"]["n"] == 2 and pc["blob"]["n"] == 4
    got = scores.column("anomaly_class").to_pylist()
    assert got[flagged[0]] == got[flagged[1]] == "unknown"


def test_lof_on_identical_rows_keeps_its_ranking_and_warns(tmp_path, fmb_home, monkeypatch):
    t = survey_table(120, seed=7, n_anom=8)
    img = np.array(t.column("image").to_pylist(), np.float32)
    normal = np.flatnonzero(~np.array(t.column("is_anomaly").to_pylist()))[:30]
    img[normal] = 0
    pq.write_table(t, tmp_path / "clean.parquet")
    i = t.schema.get_field_index("image")
    pq.write_table(t.set_column(i, "image", pa.array(img.tolist(), t.schema.field(i).type)), tmp_path / "z.parquet")
    clean, _, _ = _run(tmp_path / "clean.parquet", "lof", "image", tmp_path / "c")
    dup, scores, log = _run(tmp_path / "z.parquet", "lof", "image", tmp_path / "z")
    entry = dup["modalities"]["image"]
    assert entry["n_duplicate_rows"] == 29 and entry["deduplicated"] is True
    assert clean["modalities"]["image"]["n_duplicate_rows"] == 0
    assert "29 embedding rows repeat another row exactly" in log
    s = scores.column("score").to_numpy()
    assert np.ptp(s[normal]) == 0  # identical rows, one score
    assert s.max() < 10  # no 1e7 scores
    ap_clean = clean["modalities"]["image"]["metrics"]["average_precision"]
    ap_dup = entry["metrics"]["average_precision"]
    assert abs(ap_dup - ap_clean) < 0.2
    monkeypatch.setattr("fmb.detectors.pyod_adapter.DEDUPLICATE", frozenset())  # unprotected pyod LOF
    bare, _, _ = _run(tmp_path / "z.parquet", "lof", "image", tmp_path / "bare")
    assert bare["modalities"]["image"]["metrics"]["average_precision"] < ap_dup - 0.3


def test_one_output_that_cannot_be_scored_does_not_lose_the_others(tmp_path, fmb_home):
    t = survey_table(60, seed=1)
    i = t.schema.get_field_index("error")
    pq.write_table(
        t.set_column(i, "error", pa.array(np.zeros((60, 512)).tolist(), t.schema.field(i).type)), tmp_path / "p.parquet"
    )
    res, scores, _ = _run(tmp_path / "p.parquet", "iforest", "all", tmp_path / "out")
    assert set(res["modalities"]) == {"image"}
    assert set(res["failed_outputs"]) == {"spectrum", "joint"}
    assert "fewer than 2 objects" in res["failed_outputs"]["spectrum"]
    assert "\n" not in res["failed_outputs"]["spectrum"]
    assert set(scores.column("modality").to_pylist()) == {"image"}
    console = Console(record=True, width=200)
    console.print(summary_table([(str(tmp_path / "out"), res)]))
    assert "not scored: output 'spectrum'" in console.export_text()


def test_report_figures_leave_unlabelled_objects_out_like_results_json(tmp_path, fmb_home):
    """The report reads the same truth as the metrics: its ROC AUROC equals results.json's, and unlabelled
    objects are never drawn as normal."""
    from sklearn.metrics import roc_auc_score

    from fmb.report.collect import load_run
    from fmb.report.figures import _anomaly_classes

    t = survey_table(80, seed=3, n_anom=12)
    y = t.column("is_anomaly").to_pylist()
    y[40:] = [None] * 40
    pq.write_table(
        t.set_column(t.schema.get_field_index("is_anomaly"), "is_anomaly", pa.array(y, pa.bool_())),
        tmp_path / "p.parquet",
    )
    res, _, _ = _run(tmp_path / "p.parquet", "iforest", "image", tmp_path / "out")
    (rk,) = load_run(tmp_path / "out").rankings
    truth, s = rk.truth()
    assert len(truth) == 40 and int(truth.sum()) == sum(v is True for v in y)
    assert roc_auc_score(truth, s) == res["modalities"]["image"]["metrics"]["auroc"]
    assert (rk.classes == "unlabelled").sum() == 40 and "unlabelled" not in _anomaly_classes([rk])
