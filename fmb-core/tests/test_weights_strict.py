"""fmb.protocol.weights: the strict-load policy every model plugin goes through."""

import numpy as np
import pytest

from fmb.errors import ModelError
from fmb.protocol.weights import check_tensors, load_state_dict_strict

torch = pytest.importorskip("torch")
from fmb.testing.weights import EXTRA_KEY, weight_faults  # noqa: E402


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))


def test_an_exact_state_dict_loads():
    src, dst = _net(0), _net(1)
    load_state_dict_strict(dst, src.state_dict(), "w.safetensors")
    x = torch.randn(5, 3)
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


@pytest.mark.parametrize("fault", ["renamed", "dropped", "extra", "wrong_shape"])
def test_each_fault_is_one_line_naming_the_key_and_nothing_is_loaded(fault):
    src, dst = _net(0), _net(1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    state, key = weight_faults(src.state_dict())[fault]
    with pytest.raises(ModelError) as err:
        load_state_dict_strict(dst, state, "demo: w.safetensors")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("demo: w.safetensors: ") and key in msg
    kind = {"renamed": "missing", "dropped": "missing", "extra": "unexpected", "wrong_shape": "wrong shape"}[fault]
    assert kind in msg
    if fault == "renamed":
        assert "unexpected" in msg and key + "_renamed" in msg
    if fault == "wrong_shape":
        assert f"{key} [3] vs model [2]" in msg  # 2.bias of Linear(4, 2), one row longer
    if fault == "extra":
        assert EXTRA_KEY in msg
    for k, v in dst.state_dict().items():  # strict or not at all: not even the matching tensors changed
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_every_key_renamed_names_five_and_counts_the_rest():
    src, dst = _net(0), _net(1)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}  # e.g. a DataParallel checkpoint
    with pytest.raises(ModelError) as err:
        load_state_dict_strict(dst, state, "x")
    msg = str(err.value)
    n = len(state)  # 6 tensors
    assert f"{n} missing (" in msg and f"{n} unexpected (" in msg
    assert msg.count("and 1 more") == 2
    assert "0.bias" in msg and "module.0.bias" in msg


def test_tied_weights_stored_once_load_and_stay_tied():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 3, bias=False)
            self.b = torch.nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

    src, dst = Tied(), Tied()
    state = {"a.weight": src.a.weight.detach().clone()}  # what safetensors' save_model keeps
    load_state_dict_strict(dst, state, "x")
    torch.testing.assert_close(dst.b.weight, src.a.weight, rtol=0, atol=0)
    assert dst.a.weight is dst.b.weight
    with pytest.raises(ModelError, match=r"2 missing \(a.weight, b.weight\)"):
        load_state_dict_strict(dst, {}, "x")


def test_check_tensors_on_plain_shapes():
    check_tensors({"image": (4, 8)}, {"image": np.zeros((4, 8)).shape}, "x")
    with pytest.raises(ModelError, match=r"x: .*1 missing \(spectrum\).*image \[4, 9\] vs model \[4, 8\]"):
        check_tensors({"image": (4, 8), "spectrum": (2,)}, {"image": (4, 9)}, "x")
