"""Short videos share whisper windows (`audio/packing.py`): the layout, each word back to its own
clip and source time, and with tiny.en the same text every time, close to each clip's text alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from audio_fixtures import JFK_TEXT, mdx_models_dir, media_file, transcriber, wer  # noqa: F401 - fixtures

from mikupal import media
from mikupal.audio.packing import Window, fits_one_window, plan_windows
from mikupal.audio.transcribe import CallPlan, Source, _Clip, _fill
from mikupal.records import SpeechRegion


def test_short_sources_share_windows_in_order_and_a_long_one_keeps_its_own():
    windows = plan_windows([[4.0], [5.0, 3.0], [28.0], [6.0], [20.0], [6.0]], [True, True, False, True, True, True], 30.0)
    layout = [[(p.source, p.index, p.offset) for p in w.placed] for w in windows]
    assert layout == [
        # 4 + 1 + 5 + 1 + 3 + 1 + 6 = 21 s: source 3 joins the window source 2 did not close
        [(0, 0, 0.0), (1, 0, 5.0), (1, 1, 11.0), (3, 0, 15.0)],
        [(2, 0, 0.0)],  # not packable: alone
        [(4, 0, 0.0), (5, 0, 21.0)],  # 21 + 1 + 20 > 30: the next window; 20 + 1 + 6 = 27 s
    ]
    assert all(w.length <= 30.0 for w in windows)


def test_the_short_sources_pack_the_same_with_or_without_a_long_one_among_them():
    """A resumed run passes a committed long video over (a placeholder): the others' windows stay."""
    def short_layout(durations, packable):
        return [[(p.source, p.index, p.offset) for p in w.placed] for w in plan_windows(durations, packable, 30.0)
                if all(packable[p.source] for p in w.placed)]

    with_long = short_layout([[4.0], [9.0], [40.0], [6.0], [12.0]], [True, True, False, True, True])
    without = short_layout([[4.0], [9.0], [], [6.0], [12.0]], [True, True, False, True, True])
    assert with_long == without and with_long[0][-1][0] == 3


def test_a_source_whose_clips_do_not_fit_one_window_is_never_split():
    assert not fits_one_window([20.0, 10.0], 30.0)  # 20 + 1 + 10
    windows = plan_windows([[3.0], [20.0, 10.0]], [True, True], 30.0)
    assert [[(p.source, p.index) for p in w.placed] for w in windows] == [[(0, 0)], [(1, 0)], [(1, 1)]]


def test_a_time_belongs_to_the_clip_it_falls_in_or_the_nearest():
    w = Window()
    w.add(0, 0, 4.0)
    w.add(1, 0, 5.0)  # 5.0 .. 10.0
    assert [w.locate(t) for t in (0.5, 3.9, 4.4, 4.6, 7.0, 12.0)] == [0, 0, 0, 1, 1, 1]


def _seg(start, end, words, text=None):
    ws = [SimpleNamespace(word=f" {t}", start=a, end=b, probability=0.9) for t, a, b in words]
    return SimpleNamespace(start=start, end=end, text=text or "".join(w.word for w in ws), words=ws,
                           no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.2)


def test_words_of_a_segment_spanning_two_clips_go_back_to_their_own_clip_in_source_seconds():
    clips = [[_Clip(0, 10.0, 14.0)], [_Clip(2, 2.0, 5.0)]]
    window = plan_windows([[4.0], [3.0]], [True, True], 30.0)[0]
    plan = CallPlan(audios=[None, None], clips=clips, windows=[window])
    results = plan.empty(window)
    # window times: clip A 0..4, gap, clip B 5..8; whisper ran the last words of A and B together
    segments = [_seg(0.0, 2.0, [("one", 0.1, 0.5), ("two", 0.6, 1.9)], text="One, two."),
                _seg(3.0, 7.5, [("three", 3.1, 3.8), ("four", 5.2, 5.9), ("five", 6.0, 7.4)])]
    _fill(plan, window, results, segments, SimpleNamespace(language="en", language_probability=1.0))
    a, b = results[(0, 0)], results[(1, 0)]
    assert [s.text for s in a.segments] == ["One, two.", "three"]  # a whole segment keeps whisper's text
    assert [s.text for s in b.segments] == ["four five"]
    assert [(w.word.strip(), w.start, w.end) for w in a.words] == [("one", 10.1, 10.5), ("two", 10.6, 11.9), ("three", 13.1, 13.8)]
    assert [(w.word.strip(), w.start, w.end) for w in b.words] == [("four", 2.2, 2.9), ("five", 3.0, 4.4)]
    assert b.region_index == 2 and b.segments[0].avg_logprob == -0.3 and a.language == b.language == "en"


@pytest.fixture(scope="module")
def jfk16k():
    return media.decode_audio(media_file("jfk.flac"))


def test_packed_clips_get_their_own_words_and_the_same_text_every_time(transcriber, jfk16k, monkeypatch):
    """JFK's 11 s twice, as two short videos sharing one window: each gets the whole sentence, timed
    inside its own clip, the same on every call; close to its text alone (tiny.en)."""
    end = len(jfk16k) / 16000
    regions = [SpeechRegion(start=0.0, end=end)]
    alone = transcriber.transcribe(jfk16k, regions)
    monkeypatch.setattr(transcriber, "cfg", transcriber.cfg.model_copy(update={"pack": True}))  # off by default
    assert transcriber.packs  # an English-only model: the language is known
    runs = []
    for _ in range(2):
        shared = transcriber.shared([Source(jfk16k, regions, end), Source(jfk16k, regions, end)])
        runs.append([list(shared.for_source(i)) for i in (0, 1)])
    assert runs[0] == runs[1]
    for groups in runs[0]:
        rts = [rt for g in groups for rt in g]
        text = " ".join(rt.text for rt in rts)
        assert wer(JFK_TEXT, text) < 0.15, text
        assert wer(" ".join(rt.text for rt in alone), text) < 0.15
        assert all(0.0 <= w.start <= w.end <= end for rt in rts for w in rt.words)


def test_a_long_video_is_transcribed_as_alone_whatever_its_neighbours(transcriber, jfk16k):
    end = len(jfk16k) / 16000
    regions = [SpeechRegion(start=0.0, end=end)]
    alone = transcriber.transcribe(jfk16k, regions)
    shared = transcriber.shared([Source(jfk16k, regions, end), Source(jfk16k, regions, 31.0)])  # the second: "long"
    list(shared.for_source(0))
    assert [rt for g in shared.for_source(1) for rt in g] == alone


def test_a_failing_window_fails_every_video_it_held():
    def windows():
        yield [(0, "a")]
        raise RuntimeError("decoder died")

    from mikupal.audio.transcribe import SharedTranscription

    shared = SharedTranscription(windows(), [1, 1, 1])
    assert list(shared.for_source(0)) == [["a"]]
    for i in (1, 2):
        with pytest.raises(RuntimeError, match="decoder died"):
            list(shared.for_source(i))
