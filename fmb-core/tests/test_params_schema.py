"""Declared parameters: every detector parameter and dataset option is checked (type, range, name)
before any data are read, with a one-line error naming the detector, parameter and what is valid."""

import pytest

from fmb.errors import UsageError
from fmb.paramschema import Param, check_params, schema
from fmb.plugins import registry
from fmb.protocol.run import RunConfig, check_config

S = schema(
    Param("k", ("int",), 5, low=1),
    Param("lr", ("float",), 0.1, low=0, low_open=True),
    Param("mode", ("str",), "geo", choices=("geo", "min")),
    Param("flag", ("bool",), True),
    Param("path", ("str", "none"), None),
)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"k": 3}, {"k": 3}),
        ({"k": 3.0}, {"k": 3}),
        ({"lr": 2}, {"lr": 2.0}),
        ({"mode": "MIN"}, {"mode": "min"}),
        ({"flag": False}, {"flag": False}),
        ({"path": None}, {"path": None}),
        ({"path": "a"}, {"path": "a"}),
    ],
)
def test_valid_values_are_converted(params, expected):
    out = check_params("thing 't'", S, params)
    assert out == expected and type(out[next(iter(out))]) is type(next(iter(expected.values())))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k": 0}, "thing 't': parameter k=0 must be an integer >= 1"),
        ({"k": 2.5}, "k=2.5 must be an integer"),
        ({"k": True}, "k=True must be"),
        ({"k": "3"}, "k='3' must be"),
        ({"lr": 0}, "lr=0 must be a number > 0"),
        ({"lr": float("nan")}, "must be finite"),
        ({"mode": "max"}, "must be one of geo, min"),
        ({"mode": "gem"}, "did you mean 'geo'"),
        ({"flag": 1}, "flag=1 must be true or false"),
        ({"path": 3}, "path=3 must be a string or none"),
        ({"kk": 1}, "unknown parameter(s) kk (did you mean 'k'?) (valid: flag, k, lr, mode, path)"),
    ],
)
def test_invalid_values_are_one_line_usage_errors(params, message):
    with pytest.raises(UsageError) as err:
        check_params("thing 't'", S, params)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "detector, params, message",
    [
        ("nf", {"n_components": 0}, "detector 'nf': parameter n_components=0 must be an integer >= 1"),
        ("nf", {"epochs": 0}, "epochs=0 must be an integer >= 1"),
        ("nf", {"hidden": -5}, "hidden=-5"),
        ("nf", {"lr": -1}, "lr=-1 must be a number > 0"),
        ("knn", {"method": "foo"}, "detector 'knn': parameter method='foo' must be one of largest, mean, median"),
        ("knn", {"n_neighbors": 0}, "n_neighbors=0"),
        ("iforest", {"contamination": 0.7}, "contamination=0.7"),
        ("lof", {"algorithm": "fast"}, "algorithm='fast' must be one of"),
        ("iforest", {"standardize": "yes"}, "standardize='yes' must be true or false"),
        ("mismatch", {"align": "pca"}, "detector 'mismatch': parameter align='pca' must be one of none, cca"),
        ("mismatch", {"fold": 3}, "unknown parameter(s) fold (did you mean 'folds'?)"),
        ("fusion", {"t_image": 2}, "t_image=2 must be a number >= 0 and <= 1"),
        ("fusion", {"base_params": {"n_neighbors": -1}}, "detector 'iforest': unknown parameter(s) n_neighbors"),
    ],
)
def test_detector_parameters_are_checked_when_made(detector, params, message):
    with pytest.raises(UsageError) as err:
        registry().make_detector(detector, params)
    assert message in str(err.value)


def test_pyod_types_come_from_the_class_defaults():
    from fmb.detectors.pyod_adapter import make_detector

    with pytest.raises(UsageError, match=r"leaf_size=1.5 must be an integer >= 1"):
        make_detector("knn", leaf_size=1.5)
    with pytest.raises(UsageError, match=r"radius='far' must be a number"):  # float default 1.0
        make_detector("knn", radius="far")
    assert make_detector("knn", radius=2).params["radius"] == 2.0
    assert make_detector("hbos", n_bins="auto").params["n_bins"] == "auto"
    assert make_detector("iforest", max_samples=0.5).params["max_samples"] == 0.5  # str default: not typed


@pytest.mark.parametrize(
    "dataset, options, message",
    [
        ("parquet", {"pth": "x.parquet"}, "dataset 'parquet': unknown option(s) pth (did you mean 'path'?) (valid: "),
        ("euclid-desi", {"splt": "train"}, "dataset 'euclid-desi': unknown option(s) splt (did you mean 'split'?)"),
        ("synthetic", {"sise": 3}, "dataset 'synthetic': unknown option(s) sise (did you mean 'size'?)"),
    ],
)
def test_unknown_dataset_options_list_the_valid_ones(dataset, options, message, fmb_home):
    cfg = RunConfig(model="baseline", detector="iforest", dataset=dataset, dataset_options=options)
    with pytest.raises(UsageError) as err:
        check_config(registry(), cfg)  # reads no data: nothing is generated or downloaded
    assert message in str(err.value)
    assert not any(fmb_home.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ("--detector", "fusion:base=lof,consistency=true,consistency=false"),
        ("--dataset", "toy:size=120,size=60"),
        ("--model", "baseline:size=small, size=small"),
    ],
)
def test_a_parameter_given_twice_is_refused_in_one_line_naming_it(tmp_path, args):
    """``key=a,key=b`` used to run with the last value silently: now one line naming the key, nothing written."""
    from fmb.params import parse_spec
    from fmb.testing.cli import fmb_cli

    with pytest.raises(UsageError, match="'consistency' given twice"):
        parse_spec("fusion:consistency=true,consistency=false", "detector")
    full = {"--model": "baseline", "--detector": "iforest", "--dataset": "toy:size=120"} | {args[0]: args[1]}
    r = fmb_cli("run", *(x for kv in full.items() for x in kv), "--output", tmp_path / "out", "-q", code=2)
    key = args[1].split(",")[-1].split("=")[0].strip()
    assert f"{key!r} given twice" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out" / "results.json").exists() and not list((tmp_path / "out").rglob("results.json"))


def test_a_column_mapping_naming_a_field_twice_is_refused():
    from fmb.datasets.files.mapping import parse_columns

    with pytest.raises(ValueError, match="'flux' twice"):
        parse_columns("object_id=id;flux=f1;flux=f2")
    assert parse_columns("object_id=id;flux=f1") == {"object_id": ["id"], "flux": ["f1"]}
