"""Shared fixtures: an isolated FMB_HOME per test, the tiny ``toy`` dataset plugin, tiny AION parts
and a seeded offline Hugging Face cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmb.testing.fixtures import fmb_home, toy  # noqa: F401

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def tiny_parts():
    """A seeded tiny AION, image codec and spectrum codec (built once per session)."""
    from fmb_aion.weights import build_random

    return build_random("tiny", seed=0)


@pytest.fixture(scope="session")
def seeded_hub(tmp_path_factory, tiny_parts) -> Path:
    """A Hugging Face hub cache holding ``polymathic-ai/aion-base`` (tiny weights) at ``COMMIT``."""
    from fmb_aion.weights import save_folder

    cache = tmp_path_factory.mktemp("hf_cache")
    repo = cache / "models--polymathic-ai--aion-base"
    save_folder(repo / "snapshots" / COMMIT, *tiny_parts)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


@pytest.fixture
def offline_hub(monkeypatch, seeded_hub):
    """HF_HUB_OFFLINE=1 and the seeded cache as HF_HUB_CACHE."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(seeded_hub))
    return seeded_hub


@pytest.fixture
def empty_offline_hub(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 and an empty cache: nothing to load."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    return tmp_path
