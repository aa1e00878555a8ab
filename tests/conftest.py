"""Shared fixtures: the read-only ../shared folder, an offline models folder, one Ray session.

On a fresh clone without ../shared (MIKUPAL_TEST_SHARED=/nonexistent imitates one), `media` is
built from the shipped example clip (examples/talking_face.mp4: itself as vr_face1.mp4, four
re-framed copies as vr_face2..5, one real talking face each) and tests/data/media/jfk.flac, and
`models_dir` from the weights in tests/data/models, so the tests that need real media and weights still run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from audio_fixtures import ge2e_weights, tiny_en_dir, whisper_base_dir

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("MIKUPAL_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIKUPAL_TEST_SHARED") or ROOT.parent / "shared")
EXAMPLE_CLIP = ROOT / "examples" / "talking_face.mp4"
SHIPPED_MODELS = ROOT / "tests" / "data" / "models"
SHIPPED_MEDIA = ROOT / "tests" / "data" / "media"  # jfk.flac (MIT, as in openai/whisper's tests)
#: vr_face2..5 stand-ins: the example re-framed (different pixels, so a different content id)
_VARIANTS = ("hflip", "crop=620:620:40:30,scale=700:700", "hflip,eq=brightness=-0.05", "eq=brightness=0.06")


class _StandInMedia(type(Path())):
    """The stand-in media folder: a file it lacks (jfk.flac ...) skips the test, as without ../shared."""

    def __truediv__(self, name):
        p = super().__truediv__(name)
        if not p.exists():
            pytest.skip(f"{name} is only in ../shared")
        return p


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Path:
    """../shared, or on a fresh clone a stand-in with the same layout built from the shipped
    example clip and weights (a file it lacks skips the test that asks for it)."""
    if (SHARED / "media").is_dir():
        return SHARED
    import shutil
    import subprocess

    if not EXAMPLE_CLIP.is_file() or shutil.which("ffmpeg") is None:
        pytest.skip("../shared is not available (and no example clip / ffmpeg to stand in)")
    root = tmp_path_factory.mktemp("shared_stand_in")
    d = root / "media"
    d.mkdir()
    shutil.copy(EXAMPLE_CLIP, d / "vr_face1.mp4")
    for i, vf in enumerate(_VARIANTS, start=2):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(EXAMPLE_CLIP), "-vf", vf, "-c:v", "libx264",
                        "-preset", "ultrafast", "-crf", "26", "-c:a", "copy", str(d / f"vr_face{i}.mp4")], check=True, timeout=120)
    for f in SHIPPED_MEDIA.glob("*.flac"):
        shutil.copy(f, d / f.name)
    (root / "models").mkdir()
    for kind in SHIPPED_MODELS.iterdir():
        (root / "models" / kind.name).symlink_to(kind)
    return _StandInMedia(root)


@pytest.fixture(scope="session")
def media(shared) -> Path:
    return shared / "media"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models folder laid out as MIKUPAL_MODELS_DIR expects, assembled from offline sources."""
    root = tmp_path_factory.mktemp("models")
    for kind in ("light-asd", "lr-asd", "yunet"):
        for base in (SHARED / "models", SHIPPED_MODELS):
            if (base / kind).is_dir():
                (root / kind).symlink_to(base / kind)
                break
    voice = ge2e_weights()
    if voice is not None:
        (root / "ge2e").mkdir()
        (root / "ge2e" / "pretrained.pt").symlink_to(voice)
    (root / "whisper").mkdir()
    tiny = tiny_en_dir()
    if tiny is not None:
        (root / "whisper" / "tiny.en").symlink_to(tiny)
    base = whisper_base_dir()  # multilingual: language ID and non-English speech
    if base is not None:
        (root / "whisper" / "base").symlink_to(base)
    return root


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting one takes seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, logging_level="ERROR")
    yield ray
    ray.shutdown()
