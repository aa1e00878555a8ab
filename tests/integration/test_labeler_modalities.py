"""A real run (sequential engine, a shared clip) against the OpenAI-compatible fake: a model that
does not take what `labeler.mode` sends (gpt-4o and audio) stops the run at its first request, in
one line, with nothing committed as a reject; a model that takes it labels the clip."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.cli import main  # noqa: E402
from mikupal.engine.commit import OutputDir  # noqa: E402
from tests.fakes import FakeOpenAI  # noqa: E402

KEY = "sk-modalities-test"


def argv(models_dir: Path, inp: Path, out: Path, url: str, model: str, mode: str) -> list[str]:
    return ["run", f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
            "asr.model=tiny.en", "offline=true", "engine.progress=false", "engine=sequential", "labeler=openai",
            f"labeler.base_url={url}", f"labeler.model={model}", f"labeler.mode={mode}"]


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def test_a_model_that_refuses_audio_stops_the_run_at_the_first_request(models_dir, media, tmp_path, capsys):
    out = tmp_path / "out"
    with FakeOpenAI(api_key=KEY, served=("gpt-4o",)) as srv:
        rc = main(argv(models_dir, media / "vr_face1.mp4", out, srv.base_url, "gpt-4o", "audio"))
        completions = [e for e in srv.log if e.get("outcome") == "unsupported_input"]
        assert len(srv.requests) == 0 and len(completions) == 1, srv.log  # one request, refused
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mikupal run:")]
    assert rc == 2 and len(err) == 1, err
    assert "labeler.model=gpt-4o" in err[0] and "This model does not support input_audio content" in err[0]
    od = OutputDir(out)
    assert od.read_rejects().num_rows == 0 and od.summaries() == []  # redone by the next run


def test_an_audio_model_labels_the_clip(models_dir, media, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(api_key=KEY, served=("gpt-4o-audio-preview",)) as srv:
        rc = main(argv(models_dir, media / "vr_face1.mp4", out, srv.base_url, "gpt-4o-audio-preview", "audio"))
        assert rc == 0
        assert srv.requests and all("response_format" not in r for r in srv.requests)
    segments = OutputDir(out).read_segments()
    assert segments.num_rows >= 1 and all(segments.column("primary_emotion").to_pylist())
