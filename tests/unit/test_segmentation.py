"""Utterance cutting from word timestamps: duration bounds, cut placement, and a reason for every drop."""

from __future__ import annotations

import random

import pytest

from mikupal.audio.segmentation import MIN_GAP_SECONDS, classify_segment, cut_run, video_reject_reason
from mikupal.audio.segmentation import cut_utterances as _cut_utterances
from mikupal.audio.transcribe import RegionTranscript, WhisperSegment
from mikupal.config import SegmentConfig
from mikupal.records import SpeechRegion, Word, join_words, segment_id

VID = "v0123456789abcdef000"
SRC = "/data/talk.mp4"


def words_from(spec: list[tuple[str, float, float]]) -> list[Word]:
    return [Word(word=" " + w, start=s, end=e, probability=0.9) for w, s, e in spec]


def sentence(text: str, start: float, word_s: float = 0.4, gap: float = 0.05) -> list[Word]:
    out, t = [], start
    for w in text.split():
        out.append(Word(word=" " + w, start=round(t, 3), end=round(t + word_s, 3), probability=0.9))
        t += word_s + gap
    return out


def seg(words: list[Word], nsp: float = 0.05, lp: float = -0.3, text: str | None = None) -> WhisperSegment:
    return WhisperSegment(
        start=words[0].start if words else 0.0,
        end=words[-1].end if words else 0.0,
        text=text if text is not None else "".join(w.word for w in words).strip(),
        words=words,
        no_speech_prob=nsp,
        avg_logprob=lp,
    )


def rt(segments: list[WhisperSegment], start: float, end: float, lang: str = "en", idx: int = 0) -> RegionTranscript:
    return RegionTranscript(region_index=idx, start=start, end=end, language=lang, language_probability=0.98, segments=segments)


CFG = SegmentConfig()


def cut_utterances(video_id, source, transcripts, cfg, regions=None):
    """The real cut, checked for full accounting: every second of every clip lies in an utterance
    or a reject span; returns the rejects other than the `no_transcript` gap fillers."""
    segs, rejects = _cut_utterances(video_id, source, transcripts, cfg, regions)
    for t in transcripts:
        spans = sorted([(s.start, s.end) for s in segs] + [(r.start, r.end) for r in rejects])
        pos = t.start
        for a, b in spans:
            if b <= t.start or a >= t.end:
                continue
            assert a - pos < MIN_GAP_SECONDS + 1e-6, f"{pos:.3f}..{a:.3f} of clip {t.start}..{t.end} is unaccounted"
            pos = max(pos, b)
        assert t.end - pos < MIN_GAP_SECONDS + 1e-6, f"{pos:.3f}..{t.end} of clip {t.start}..{t.end} is unaccounted"
    gaps = [r for r in rejects if r.reason == "no_transcript"]
    assert all(r.start is not None and r.end > r.start and r.stage == "asr" for r in gaps)
    return segs, [r for r in rejects if r.reason != "no_transcript"]


def check_invariants(segments, cfg=CFG):
    for s in segments:
        assert cfg.min_seconds - 1e-6 <= s.end - s.start <= cfg.max_seconds + 1e-6
        assert s.start <= s.words[0].start and s.words[-1].end <= s.end  # never inside a word
        assert [w.start for w in s.words] == sorted(w.start for w in s.words)
        assert s.segment_id == segment_id(s.video_id, s.start)
        assert s.text == join_words(s.words)
    for a, b in zip(segments, segments[1:]):
        assert a.end <= b.start + 1e-9


def test_two_sentences_with_a_pause_become_two_utterances():
    w1 = sentence("the first sentence is here and it ends now.", 0.2)
    w2 = sentence("then a second one follows after a pause.", w1[-1].end + 0.7)
    segs, rejects = cut_utterances(VID, SRC, [rt([seg(w1 + w2)], 0.0, w2[-1].end + 0.3)], CFG)
    assert [s.text for s in segs] == ["the first sentence is here and it ends now.", "then a second one follows after a pause."]
    assert rejects == []
    check_invariants(segs)
    assert segs[0].language == "en" and segs[0].language_probability == pytest.approx(0.98)
    assert segs[0].words[0].word == " the"  # whisper's own token, leading space kept: text is the joined words


def test_long_run_on_speech_is_cut_between_words_within_bounds():
    words = sentence(" ".join(f"w{i}" for i in range(100)), 1.0)  # 45 s, no punctuation, no pauses
    segs, rejects = cut_utterances(VID, SRC, [rt([seg(words)], 0.5, words[-1].end + 0.5)], CFG)
    assert len(segs) >= 3 and rejects == []
    check_invariants(segs)
    assert sum(len(s.words) for s in segs) == 100  # every word kept exactly once


def test_prefers_sentence_ends_then_pauses_over_run_on_gaps():
    a = sentence("one two three four five six.", 0.0)
    b = sentence("seven eight nine ten eleven twelve thirteen", a[-1].end + 0.1)
    c = sentence("fourteen fifteen sixteen seventeen eighteen nineteen", b[-1].end + 0.8)
    segs, _ = cut_utterances(VID, SRC, [rt([seg(a + b + c)], 0.0, 40.0)], SegmentConfig(max_seconds=6.0))
    texts = [s.text for s in segs]
    assert texts[0].endswith("six.")  # cut at the sentence end
    assert texts[-1].startswith("fourteen")  # and at the pause


def test_a_long_silence_always_ends_an_utterance():
    a = sentence("hello there my friend how are", 0.0)
    b = sentence("you doing today my dear friend", a[-1].end + 2.5)
    segs, _ = cut_utterances(VID, SRC, [rt([seg(a + b)], 0.0, 20.0)], CFG)
    assert len(segs) == 2 and segs[0].end < b[0].start


def test_padding_never_reaches_into_a_neighbour_word():
    a = sentence("alpha beta gamma delta epsilon.", 0.0)
    b = sentence("zeta eta theta iota kappa.", a[-1].end + 0.08)
    segs, _ = cut_utterances(VID, SRC, [rt([seg(a + b)], 0.0, 30.0)], SegmentConfig(pad_seconds=0.5))
    assert len(segs) == 2
    assert segs[0].end <= b[0].start and segs[1].start >= a[-1].end
    assert segs[0].start == 0.0  # clamped to the clip


def test_short_region_is_too_short():
    w = sentence("hi there.", 3.0)  # 1.05 s padded: kept under the default 1 s minimum, too short under 2 s
    assert cut_utterances(VID, SRC, [rt([seg(w)], 2.8, 4.2)], CFG)[0]
    segs, rejects = cut_utterances(VID, SRC, [rt([seg(w)], 2.8, 4.2)], SegmentConfig(min_seconds=2.0))
    assert segs == []
    assert [(r.reason, r.stage) for r in rejects] == [("too_short", "asr")]
    r = rejects[0]
    assert r.start == pytest.approx(2.9) and r.end == pytest.approx(3.95) and r.item_id == segment_id(VID, r.start)


def test_a_word_longer_than_max_is_unsplittable():
    w = words_from([("aaaaaah", 0.0, 20.0)])
    segs, rejects = cut_utterances(VID, SRC, [rt([seg(w)], 0.0, 20.0)], CFG)
    assert segs == [] and [r.reason for r in rejects] == ["unsplittable"]


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(nsp=0.9), "no_speech"),
        (dict(lp=-2.0), "low_confidence"),
        (dict(text="♪ ♪ ♪"), "music"),
        (dict(text="[Music]"), "music"),
        (dict(text="(upbeat music)"), "music"),
        (dict(text="[BLANK_AUDIO]"), "no_speech"),
    ],
)
def test_unusable_whisper_segments_are_rejected_with_their_reason(kwargs, reason):
    w = sentence("this could be a perfectly fine utterance of speech", 0.0)
    if "text" in kwargs:
        w = words_from([(kwargs["text"], 0.0, 4.0)])
    s = seg(w, **kwargs)
    assert classify_segment(s, CFG)[0] == reason
    segs, rejects = cut_utterances(VID, SRC, [rt([s], 0.0, 5.0)], CFG)
    assert segs == [] and [r.reason for r in rejects] == [reason]
    assert rejects[0].start is not None and rejects[0].end is not None


def test_a_rejected_segment_splits_its_neighbours():
    a = sentence("first part of speech that is fine.", 0.0)
    bad = sentence("garbled noise hallucinated here", a[-1].end + 0.1)
    c = sentence("third part of the speech is fine too.", bad[-1].end + 0.1)
    segs, rejects = cut_utterances(VID, SRC, [rt([seg(a), seg(bad, lp=-3.0), seg(c)], 0.0, 30.0)], CFG)
    assert [s.text for s in segs] == ["first part of speech that is fine.", "third part of the speech is fine too."]
    assert [r.reason for r in rejects] == ["low_confidence"]
    assert rejects[0].start == bad[0].start


def test_language_not_allowed_and_empty_regions():
    w = sentence("bonjour tout le monde comment allez vous", 0.0)
    segs, rejects = cut_utterances(
        VID, SRC, [rt([seg(w)], 0.0, 5.0, lang="fr"), rt([], 10.0, 12.0, idx=1)], SegmentConfig(languages=["en", "ja"])
    )
    assert segs == []
    assert [r.reason for r in rejects] == ["language_not_allowed", "no_speech"]
    assert "fr" in rejects[0].message


def test_snr_and_scores_are_carried():
    w = sentence("a fine sentence spoken clearly by someone.", 0.0)
    regions = [SpeechRegion(start=0.0, end=5.0, snr_db_before=8.0, snr_db_after=21.5)]
    segs, _ = cut_utterances(VID, SRC, [rt([seg(w, nsp=0.1, lp=-0.25)], 0.0, 5.0)], CFG, regions)
    assert segs[0].snr_db == 21.5 and segs[0].no_speech_prob == 0.1 and segs[0].avg_logprob == -0.25


def test_video_reject_reason_is_the_reason_that_dropped_most_speech():
    from mikupal.records import Reject

    def r(reason, s, e):
        return Reject(item_id="x", video_id=VID, source=SRC, stage="asr", reason=reason, start=s, end=e)

    assert video_reject_reason([]) == "no_speech"
    assert video_reject_reason([r("too_short", 0, 1), r("too_short", 2, 3), r("music", 5, 9)]) == "music"


def test_random_word_streams_keep_the_invariants():
    rng = random.Random(7)
    for _ in range(30):
        t, words = rng.uniform(0, 3), []
        for i in range(rng.randint(1, 120)):
            d = rng.uniform(0.05, 0.9)
            end_mark = rng.choice(["", "", "", "", ",", "."])
            words.append(Word(word=f" w{i}{end_mark}", start=round(t, 3), end=round(t + d, 3), probability=0.9))
            t += d + rng.choice([0.0, 0.02, 0.1, 0.3, 0.6, 1.2, 2.5])
        cfg = SegmentConfig(min_seconds=rng.choice([1.0, 2.0]), max_seconds=rng.choice([8.0, 15.0]))
        segs, rejects = cut_utterances(VID, SRC, [rt([seg(words)], 0.0, t + 1)], cfg)
        check_invariants(segs, cfg)
        kept = sum(len(s.words) for s in segs)
        assert kept <= len(words)
        assert kept == len(words) or rejects, "every dropped word is accounted for by a reject"
        assert all(r.reason in ("too_short", "unsplittable") for r in rejects)


def test_cut_run_pieces_tile_the_words():
    words = sentence(" ".join(f"x{i}" for i in range(60)), 0.0)
    pieces = cut_run(words, CFG, 0.0, 60.0)
    assert pieces[0][0] == 0 and pieces[-1][1] == 60
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
