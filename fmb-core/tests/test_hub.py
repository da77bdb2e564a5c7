"""fmb.hub against a seeded offline Hugging Face cache, and the weights policy (resolve_source)."""

from __future__ import annotations

import pytest

from fmb import hub
from fmb.errors import ModelError, UsageError
from fmb.protocol.weights import RandomWeightsWarning, resolve_source

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "Owner/Some_Model"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """A hub cache holding ``Owner/Some_Model`` at ``SHA`` with ``w/ckpt.bin``; HF_HUB_OFFLINE=1."""
    root = tmp_path / "hf"
    repo = root / "models--Owner--Some_Model"
    (repo / "snapshots" / SHA / "w").mkdir(parents=True)
    (repo / "snapshots" / SHA / "w" / "ckpt.bin").write_bytes(b"weights")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_download_from_the_offline_cache_ignoring_case(offline_cache):
    got = hub.download("owner/some_model", "w/ckpt.bin")
    assert got.path.read_bytes() == b"weights" and got.revision == SHA and got.repo == REPO
    assert hub.snapshot(REPO, require=("w/ckpt.bin",)).path.name == SHA


def test_offline_misses_are_one_line_hub_errors(offline_cache):
    with pytest.raises(hub.HubError, match=r"hf:Owner/Some_Model/other.bin: HF_HUB_OFFLINE=1 and it is not in"):
        hub.download(REPO, "other.bin")
    with pytest.raises(hub.HubError, match=r"hf:nobody/nothing.*HF_HUB_OFFLINE=1"):
        hub.download("nobody/nothing", "x")
    with pytest.raises(hub.HubError, match=r"lacks config\.json"):
        hub.snapshot(REPO, require=("config.json",))
    (offline_cache / "models--owner--some_model").mkdir()
    with pytest.raises(hub.HubError, match="several spellings"):
        hub.download("OWNER/SOME_MODEL", "w/ckpt.bin")


def test_gated_and_missing_file_errors_name_repo_and_file(monkeypatch, tmp_path):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hub, "reachable", lambda timeout=3.0: True)
    response = httpx.Response(403, request=httpx.Request("GET", "https://huggingface.co/api/models/a/b"))

    def gated(*a, local_files_only=False, **k):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise GatedRepoError("403 restricted", response=response)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(hub.HubError, match=r"hf:a/b/f.bin: the repository is gated.*HF_TOKEN"):
        hub.download("a/b", "f.bin")

    def missing(*a, local_files_only=False, **k):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise EntryNotFoundError("404 no such file")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
    with pytest.raises(hub.HubError, match=r"hf:a/b/f.bin@v1: the repository has no such file"):
        hub.download("a/b", "f.bin", "v1")
    monkeypatch.setattr(hub, "reachable", lambda timeout=3.0: False)
    with pytest.raises(hub.HubError, match="unreachable"):
        hub.download("a/b", "f.bin")


def _fetch(repo, rev):
    return hub.download(repo, "w/ckpt.bin", rev)


def test_weights_policy(offline_cache, tmp_path):
    src = resolve_source("auto", model="m", seed=0, fetch=_fetch, official=REPO)
    assert (src.kind, src.location, src.revision) == ("hf", REPO, SHA) and src.path.read_bytes() == b"weights"
    assert resolve_source(f"hf:{REPO}@{SHA}", model="m", seed=0, fetch=_fetch).kind == "hf"
    assert resolve_source("random", model="m", seed=0, fetch=_fetch).kind == "random"
    f = tmp_path / "w.bin"
    f.write_bytes(b"x")
    src = resolve_source(str(f), model="m", seed=0, fetch=_fetch)
    assert src.kind == "path" and src.path == f.resolve()
    with pytest.raises(ModelError, match="'m' has learned weights"):
        resolve_source("none", model="m", seed=0, fetch=_fetch)
    with pytest.raises(UsageError, match="no such file"):
        resolve_source(str(tmp_path / "nope"), model="m", seed=0, fetch=_fetch)
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE"):  # hf: never falls back to random
        resolve_source("hf:other/repo", model="m", seed=0, fetch=_fetch)


def test_auto_falls_back_to_random_with_one_loud_warning(offline_cache):
    with pytest.warns(
        RandomWeightsWarning,
        match=r"m: no weights found \(hf:other/repo/w/ckpt.bin: HF_HUB_OFFLINE"
        r".*RANDOM initialisation \(seed 4\).*Try this",
    ):
        src = resolve_source("auto", model="m", seed=4, fetch=_fetch, official="other/repo", hint="Try this")
    assert src.kind == "random"
    with pytest.warns(RandomWeightsWarning, match="no tiny weights"):
        assert (
            resolve_source("auto", model="m", seed=0, fetch=_fetch, official=REPO, no_official="no tiny weights").kind
            == "random"
        )
