"""Spec objects validate when registered and name the spec and field at fault."""

import pytest

from fmb.specs import DatasetSpec, DetectorSpec, ModelSpec, SpecError


def model(**kw):
    base = dict(
        name="m",
        description="d",
        loader="pkg.mod:load",
        version="1",
        license="MIT",
        modalities=("image", "spectrum"),
        outputs={"image": 8, "spectrum": 8, "joint": 16},
    )
    return ModelSpec(**{**base, **kw})


def test_valid_model_spec():
    model().validate()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"name": "Bad Name"}, "name must match"),
        ({"name": ""}, "'name' must be a non-empty string"),
        ({"description": ""}, "'description'"),
        ({"version": None}, "'version'"),
        ({"loader": "pkg.mod.load"}, "not 'module:attr'"),
        ({"modalities": ()}, "modalities"),
        ({"modalities": ("radio",)}, "modalities"),
        ({"outputs": {}}, "at least one"),
        ({"outputs": {"image": 0}}, "positive int"),
        ({"outputs": {"image": True}}, "positive int"),
        ({"outputs": {"sound": 4}}, "unknown output 'sound'"),
        ({"modalities": ("image",), "outputs": {"spectrum": 4}}, "needs modality 'spectrum'"),
        ({"modalities": ("image",), "outputs": {"image": 4, "joint": 4}}, "'joint' output needs two"),
    ],
)
def test_bad_model_specs_name_the_field(kw, match):
    with pytest.raises(SpecError, match=match) as info:
        model(**kw).validate()
    assert "model" in str(info.value)


def test_dataset_and_detector_specs():
    DatasetSpec(name="d", description="x", loader="a:b", modalities=("image",)).validate()
    DetectorSpec(name="k", description="x", loader="a:b", params={"n": 1}).validate()
    with pytest.raises(SpecError, match="dataset 'd'"):
        DatasetSpec(name="d", description="x", loader="a:b").validate()


def test_loader_is_lazy_and_resolves_dotted_attributes():
    spec = DetectorSpec(name="k", description="x", loader="os.path:join")
    assert spec.load() is __import__("os").path.join
