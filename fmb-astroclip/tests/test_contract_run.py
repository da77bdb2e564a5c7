"""End to end: a run on the synthetic (Euclid-like, 0.1"/px) survey records the input adaptation and shows
the domain warning in results.json, the terminal summary and the HTML report; `fmb models --json` shows it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fmb.cli import cli


def test_synthetic_run_records_adaptation_and_domain_warning(tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "astroclip:size=small",
            "--detector",
            "iforest",
            "--dataset",
            "synthetic:size=24",
            "--weights",
            "random",
            "--modality",
            "image",
            "--output",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    res = json.loads(next(out.rglob("results.json")).read_text())
    warnings = res["domain_warnings"]
    assert any('pixel scale 0.1"/px vs the model\'s 0.262"/px' in w for w in warnings)
    assert all(w.startswith("image:") for w in warnings)  # the run scored images only
    plan = res["model"]["input_adaptation"]["image"]
    assert [m["from"] for m in plan["band_map"]] == ["VIS", "VIS", "Y"]
    assert plan["resample"]["zoom"] == round(0.1 / 0.262, 6) and plan["resample"]["stamp_out"] == 144
    assert res["model"]["settings"]["preprocess"] == 2
    assert "OUTSIDE" in r.output and "outside the training domain" in r.output
    html = CliRunner().invoke(
        cli,
        ["report", str(next(out.rglob("results.json")).parent), "--out", str(tmp_path / "report.html")],
        catch_exceptions=False,
    )
    assert html.exit_code == 0, html.output
    page = (tmp_path / "report.html").read_text()
    assert "outside the model&#x27;s training domain" in page or "outside the model's training domain" in page


def test_models_json_shows_every_contract():
    r = CliRunner().invoke(cli, ["models", "--json"], catch_exceptions=False)
    models = {m["name"]: m for m in json.loads(r.output)}
    for name, scale in (("astroclip", 0.262), ("aion", 0.168), ("astropt", 0.262)):
        img = models[name]["input_contract"]["image"]
        assert img["pixel_scale_arcsec"] == scale and img["bands"] and img["source"]
    assert models["astroclip"]["input_contract"]["spectrum"]["pixel_aa"] == 0.8
