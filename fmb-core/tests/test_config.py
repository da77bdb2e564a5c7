"""The TOML benchmark file: strict types, unknown keys and misspelt tables are one-line errors."""

import pytest

from fmb.config import expand, load_toml, resolve
from fmb.errors import UsageError

HEAD = '[benchmark]\nmodels = ["baseline"]\ndetectors = ["iforest"]\n'


def load(tmp_path, text):
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return expand(resolve(load_toml(path), {}))


@pytest.mark.parametrize(
    "extra, message",
    [
        ("seeds = [1.7]\n", "seeds = [1.7]: 1.7 is not an integer"),
        ("seeds = [true]\n", "is not an integer"),
        ("seeds = 2.0\n", "seeds = 2.0: 2.0 is not an integer"),
        ("batch_size = 3.5\n", "batch_size = 3.5"),
        ("batch_size = true\n", "batch_size = True"),
        ("output = 5\n", "output = 5: 5 is not a string"),
        ("overwrite = 1\n", "overwrite = 1: 1 is not true or false"),
        ("modality = 3\n", "modality = 3"),
        ("seed = [1]\n", "unknown key 'seed' in [benchmark] (did you mean 'seeds'?)"),
        (
            "[detectors.iforrest]\nn_estimators = 5\n",
            "[detectors.iforrest] names no registered detector (did you mean 'iforest'?)",
        ),
        ("[datasets.synthetc]\nsize = 5\n", "(did you mean 'synthetic'?)"),
        ("[models]\nbaseline = 3\n", "[models.baseline] must be a table of options"),
        ("[detector.iforest]\nn_estimators = 5\n", "unknown table(s) detector (did you mean 'detectors'?)"),
    ],
)
def test_bad_file_is_one_line_naming_the_file(tmp_path, extra, message):
    with pytest.raises(UsageError) as err:
        load(tmp_path, HEAD + extra)
    text = str(err.value)
    assert message in text and "bench.toml" in text and "\n" not in text


def test_good_file_expands_with_tables_and_types(tmp_path):
    cfgs = load(
        tmp_path,
        HEAD + 'seeds = [3, 4]\noutput = "res"\noverwrite = true\n'
        "[detectors.iforest]\nn_estimators = 7\n[datasets.synthetic]\nsize = 60\n",
    )
    assert [c.seed for c in cfgs] == [3, 4]
    assert all(c.detector_params == {"n_estimators": 7} and c.dataset_options == {"size": 60} for c in cfgs)
    assert all(c.overwrite and c.output == "res" for c in cfgs)
    assert "overwrite" not in cfgs[0].to_dict()  # not part of the recorded configuration


def test_command_line_overrides_keep_strict_types(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(HEAD + "seeds = [1]\n")
    assert [c.seed for c in expand(resolve(load_toml(path), {"seeds": (5,)}))] == [5]
    assert not expand(resolve(load_toml(path), {"overwrite": None}))[0].overwrite
