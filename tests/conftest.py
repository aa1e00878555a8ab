"""Shared fixtures: the read-only ../shared folder, an offline models folder, one Ray session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from audio_fixtures import ge2e_weights, tiny_en_dir

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("MIKUPAL_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "media").is_dir():
        pytest.skip("../shared is not available")
    return SHARED


@pytest.fixture(scope="session")
def media(shared) -> Path:
    return shared / "media"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, shared) -> Path:
    """A models folder laid out as MIKUPAL_MODELS_DIR expects, assembled from offline sources."""
    root = tmp_path_factory.mktemp("models")
    for kind in ("light-asd", "lr-asd", "yunet"):
        if (shared / "models" / kind).is_dir():
            (root / kind).symlink_to(shared / "models" / kind)
    voice = ge2e_weights()
    if voice is not None:
        (root / "ge2e").mkdir()
        (root / "ge2e" / "pretrained.pt").symlink_to(voice)
    tiny = tiny_en_dir()
    if tiny is not None:
        (root / "whisper").mkdir()
        (root / "whisper" / "tiny.en").symlink_to(tiny)
    return root


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting one takes seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, logging_level="ERROR")
    yield ray
    ray.shutdown()
