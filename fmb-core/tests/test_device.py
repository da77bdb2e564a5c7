"""``--device``: auto/cpu/cuda/mps resolved against what torch reports (torch faked: no device needed)."""

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import UsageError
from fmb.protocol import environment


def fake_torch(cuda: bool, mps: bool | None):
    backends = SimpleNamespace() if mps is None else SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps))
    return SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: cuda), backends=backends)


@pytest.mark.parametrize("cuda", [False, True])
def test_mps_accepted_where_torch_reports_it(monkeypatch, cuda):
    monkeypatch.setattr(environment, "_torch", lambda: fake_torch(cuda=cuda, mps=True))
    assert environment.resolve_device("mps") == "mps"
    # auto never picks mps: cuda when there is one, else cpu
    assert environment.resolve_device("auto") == ("cuda" if cuda else "cpu")


@pytest.mark.parametrize("torch", [fake_torch(cuda=True, mps=False), fake_torch(cuda=False, mps=None), None])
def test_mps_refused_with_one_line_where_unavailable(monkeypatch, torch):
    monkeypatch.setattr(environment, "_torch", lambda: torch)
    with pytest.raises(UsageError) as exc:
        environment.resolve_device("mps")
    msg = str(exc.value)
    assert "MPS is not available here" in msg and "Apple" in msg and "\n" not in msg


def test_cuda_and_unknown_names(monkeypatch):
    monkeypatch.setattr(environment, "_torch", lambda: fake_torch(cuda=False, mps=True))
    with pytest.raises(UsageError, match="no CUDA device"):
        environment.resolve_device("cuda:1")
    with pytest.raises(UsageError, match="expected auto, cpu, cuda, cuda:N or mps"):
        environment.resolve_device("metal")
    assert environment.resolve_device("cpu") == "cpu"


def test_cli_device_mps_without_mps_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(environment, "_torch", lambda: fake_torch(cuda=False, mps=False))
    args = ["run", "--model", "baseline", "--detector", "iforest", "--dataset", "synthetic:size=60", "--device", "mps"]
    r = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "MPS is not available here" in lines[0], r.output
