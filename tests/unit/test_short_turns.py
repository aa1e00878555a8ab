"""Short turns: word-bounded voice suspects (speaker/turns.py) and what the faces make of them
(vision/turn_check.py).

Synthetic voices through a strict stand-in for the encoder (a prefix's embedding is the mean voice
of its frames, as a perfect encoder's would be), synthetic ASD scores for the faces, and the real
GE2E weights on the real voices of ../shared/media.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import ge2e_weights

from mikupal.records import FaceTrack, VoiceSuspect, VoiceWindows, Word
from mikupal.speaker.embed import VoiceFrames
import mikupal.speaker.turns as turns_mod
from mikupal.speaker.turns import TurnRules, question_then_reply, short_turns, turn_starts, word_coverage
from mikupal.vision.turn_check import check_turns

RULES = TurnRules([[0.5, 0.56, 0.45], [0.75, 0.60, 0.50], [1.0, 0.63, 0.52], [1.5, 0.65, 0.55]], 0.4, 2.0, 0.05)
RNG = np.random.default_rng(3)


def unit(v):
    return v / np.linalg.norm(v)


A, B = unit(RNG.normal(size=32)), unit(RNG.normal(size=32))


class MeanVoiceEncoder:
    """Frame f holds voice `voices[f]`; a prefix's embedding is its frames' mean voice."""

    def __init__(self, voices: np.ndarray):
        self.voices = voices

    def embed_prefixes(self, frames, starts, max_frames):
        out = np.zeros((len(starts), max_frames, self.voices.shape[1]), dtype=np.float32)
        for i, s in enumerate(starts):
            run = self.voices[s : s + max_frames]
            c = np.cumsum(run, axis=0)
            out[i, : len(run)] = c / np.linalg.norm(c, axis=1, keepdims=True)
            out[i, len(run) :] = out[i, len(run) - 1]
        return out


def conversation(turns: list[tuple[np.ndarray, float, list[str]]], gap: float = 0.15):
    """(voices per 10 ms frame, words, 1.5 s windows) of turns (voice, seconds, words) in a row."""
    frames, words, t = [], [], 0.0
    for voice, seconds, ws in turns:  # a turn without words: a laugh, a sob (voiced, no word from whisper)
        per = seconds / max(1, len(ws))
        for k, w in enumerate(ws):
            words.append(Word(word=" " + w, start=round(t + k * per, 2), end=round(t + (k + 1) * per - 0.05, 2), probability=0.9))
        frames += [voice] * int(round(seconds * 100)) + [voice] * int(round(gap * 100))
        t += seconds + gap
    v = np.asarray(frames)
    n = len(v)
    starts = list(range(0, max(1, n - 150 + 1), 50))
    emb = [unit(v[s : s + 150].mean(axis=0)).tolist() for s in starts]
    windows = VoiceWindows(starts=[s / 100 for s in starts], ends=[min(n, s + 150) / 100 for s in starts], embeddings=emb,
                           speech=[True] * len(starts))
    return VoiceFrames(np.zeros((n, 40), np.float32), np.ones(n, dtype=bool)), MeanVoiceEncoder(v), words, windows


def test_turns_may_start_at_the_first_word_after_a_pause_or_punctuation_and_near_the_end():
    ws = [Word(word=w, start=a, end=b, probability=1) for w, a, b in
          [(" so", 0.0, 0.3), (" really?", 0.32, 0.8), (" yes", 0.85, 1.2), (" I", 1.4, 1.5), (" swear", 1.52, 2.0),
           (" it", 2.02, 2.3), (" is", 2.32, 3.0), (" true", 3.02, 4.0)]]
    assert turn_starts(ws, edge_seconds=1.2) == [0, 2, 3, 7]
    assert question_then_reply(ws) and not question_then_reply(ws[:2])


def test_one_voice_has_no_suspect():
    frames, enc, words, windows = conversation([(A, 3.0, ["a"] * 8), (A, 0.8, ["b", "c"]), (A, 3.0, ["d"] * 8)])
    assert short_turns(enc, frames, windows, words, 0.0, RULES) == []


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_short_turn_of_another_voice_is_a_sure_suspect_with_its_words_bounds(where):
    parts = {"start": [(B, 0.6, ["yes"]), (A, 4.0, ["a"] * 10)],
             "middle": [(A, 3.0, ["a"] * 8), (B, 0.6, ["yes"]), (A, 3.0, ["a"] * 8)],
             "end": [(A, 4.0, ["a"] * 10), (B, 0.6, ["yes"])]}[where]
    frames, enc, words, windows = conversation(parts)
    found = short_turns(enc, frames, windows, words, 0.0, RULES)
    yes = next(w for w in words if w.word == " yes")
    assert [(s.start, s.end, s.words) for s in found] == [(yes.start, yes.end, 1)]
    assert found[0].sure and found[0].similarity < 0.3


LAUGH = unit(RNG.normal(size=32))  # a laugh of the same person: voiced, no words, unlike their speech


def test_a_laugh_without_words_is_not_the_voice_the_words_are_measured_against(monkeypatch):
    """Speech then a long laugh of the same person: against the laugh's windows, the person's own
    words would look like another voice (a sure suspect). Only windows that hold words stand for
    the rest's voice, so the words are not suspects."""
    turns = [(A, 1.4, ["hey", "my", "name", "is", "kory"]), (LAUGH, 3.0, [])]
    frames, enc, words, windows = conversation(turns)
    assert short_turns(enc, frames, windows, words, 0.0, RULES) == []
    cover = word_coverage(windows, words)
    assert cover[0] >= turns_mod.WORDED_FRACTION > cover[1] and cover[-1] == 0.0, cover
    monkeypatch.setattr(turns_mod, "WORDED_FRACTION", 0.0)  # every voiced window: the laugh makes the words a suspect
    assert any(s.sure for s in short_turns(enc, frames, windows, words, 0.0, RULES))


def test_a_reply_beside_a_laugh_is_still_found():
    """The rule keeps the worded windows: another voice's reply between speech and a laugh is found."""
    frames, enc, words, windows = conversation([(A, 3.5, ["a"] * 9), (B, 0.6, ["yes"]), (LAUGH, 2.0, [])])
    found = short_turns(enc, frames, windows, words, 0.0, RULES)
    yes = next(w for w in words if w.word == " yes")
    assert [(s.start, s.end) for s in found] == [(yes.start, yes.end)] and found[0].sure, found


# ---------------------------------------------------------------- the faces' verdicts

N = 150  # 6 s at 25 fps


def face(tid: int, speaking: list[tuple[int, int]], present: tuple[int, int] = (0, N)) -> FaceTrack:
    frames = list(range(*present))
    s = np.full(N, -2.0)
    for a, b in speaking:
        s[a:b] = 2.0
    return FaceTrack(track_id=tid, frames=frames, boxes=[[0.0, 0.0, 100.0, 100.0]] * len(frames), asd_scores=s[frames].tolist())


WORDS = [Word(word=f" w{k}", start=k * 0.4, end=k * 0.4 + 0.3, probability=0.9) for k in range(15)]


def verdicts(tracks, suspects=(), words=WORDS, sim=None):
    return check_turns(tracks, N, np.ones(N, dtype=bool), words, list(suspects), 0.0, 0.0, 13, lambda s: 0.6,
                       lambda a, b: sim)


def test_a_voice_while_the_only_face_is_silent_is_cut_out():
    out = verdicts([face(0, [(0, 100), (125, 150)])])
    assert out.changes == [4.0, 5.0] and "off screen" in out.notes[0]


def test_the_speakers_own_voice_or_a_wordless_sound_is_kept():
    assert verdicts([face(0, [(0, 100), (125, 150)])], sim=0.8).changes == []  # ASD missed the speaker: same voice
    no_words = [w for w in WORDS if not 4.0 <= w.start < 5.0]
    out = verdicts([face(0, [(0, 100), (125, 150)])], words=no_words)  # a laugh: no words there
    assert out.changes == [] and "no word" in out.kept[0]


def suspect(a, b, sure=False):
    return VoiceSuspect(start=a, end=b, similarity=0.4, doubt=0.6, sure=sure, words=2)


def test_a_suspect_the_speakers_face_speaks_is_dismissed():
    out = verdicts([face(0, [(0, N)])], [suspect(2.0, 3.0)])
    assert out.changes == [] and "seen speaking" in out.kept[0]


def test_a_suspect_where_the_face_is_silent_or_another_speaks_is_cut():
    assert verdicts([face(0, [(0, 50), (75, N)])], [suspect(2.0, 3.0)]).changes == [2.0, 3.0]
    two = verdicts([face(0, [(0, 125)]), face(1, [(125, N)])], [suspect(5.0, 6.0)])
    assert two.changes == [5.0] and "another face" in two.notes[-1]


def test_a_suspect_the_faces_cannot_see_is_cut_only_when_the_voice_is_sure():
    gone = face(0, [(0, 50), (75, N)], present=(0, 50))  # the face leaves the screen at 2 s
    assert verdicts([gone], [suspect(3.0, 4.0)]).changes == []
    assert verdicts([gone], [suspect(3.0, 4.0, sure=True)]).changes == [3.0, 4.0]


# ---------------------------------------------------------------- the real encoder on real voices

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "media"


@pytest.fixture(scope="module")
def encoder():
    weights = ge2e_weights()
    if weights is None or not (SHARED / "vr_face1.mp4").is_file():
        pytest.skip("GE2E weights (resemblyzer wheel) or ../shared/media absent")
    from mikupal.speaker.embed import VoiceEncoder

    return VoiceEncoder.load(weights)


def real_words(spec):
    return [Word(word=" " + w, start=a, end=b, probability=0.9) for w, a, b in spec]


def test_a_real_reply_at_the_end_is_found_and_one_real_voice_is_not(encoder):
    """vr_face1 speaks 0-2.4 s, vr_face2 says "Growing up." (0.6 s) after a 0.2 s pause. (In so
    short an utterance the rest of a span is often both voices: a span of the first voice may be
    a suspect too, which its face then dismisses; the reply is the least alike.)"""
    from mikupal import media
    from mikupal.speaker.embed import windows_record

    one = media.decode_audio(SHARED / "vr_face1.mp4", 0.0, 2.45, 16000)
    two = media.decode_audio(SHARED / "vr_face2.mp4", 4.4, 5.0, 16000)
    audio = np.concatenate([one, np.zeros(3200, np.float32), two])
    words = real_words([("My", 0.0, 0.22), ("biggest", 0.22, 0.52), ("weaknesses", 0.52, 0.92), ("is", 0.92, 1.3),
                        ("asking", 1.3, 1.54), ("for", 1.54, 1.76), ("help", 1.76, 1.94), ("when", 1.94, 2.08),
                        ("I", 2.08, 2.22), ("need", 2.22, 2.32), ("it.", 2.32, 2.4), ("Growing", 2.66, 2.95), ("up.", 2.95, 3.25)])
    frames = encoder.analyse(audio)
    windows = windows_record(encoder.embed_windows(frames), 0.0)
    found = short_turns(encoder, frames, windows, words, 0.0, RULES)
    # the reply (0.3 s of it loud), with at most the last words of the turn before it ("need it."),
    # is the most unlike the rest
    reply = min(found, key=lambda s: s.similarity)
    assert 2.0 <= reply.start <= 2.66 and reply.end == 3.25 and reply.similarity < 0.5, found
    alone = short_turns(encoder, encoder.analyse(one), windows_record(encoder.embed_windows(one), 0.0), words[:11], 0.0, RULES)
    assert not any(s.sure for s in alone), alone


def test_a_suspect_gets_every_frame_around_it_and_at_both_ends_scored():
    from mikupal.vision.search import focus_frames, merge_ranges

    assert merge_ranges([(5, 9), (0, 3), (2, 4), (9, 12)]) == [(0, 4), (5, 12)]
    # 10 s utterance from source second 100: a 0.4 s suspect at 105 s grows to 2 s; both 1.5 s ends
    assert focus_frames([suspect(105.0, 105.4)], 100.0, 250) == [(0, 38), (105, 156), (212, 250)]


LAUGH_CLIP = Path(__file__).resolve().parents[1] / "data" / "media" / "laugh_intro.flac"  # tests/data/README.md


def test_a_real_laugh_of_the_same_person_makes_no_suspect(monkeypatch):
    """A man says "Hey, my name is Kory." (1.1-2.4 s) and laughs (2.6-5.3 s), in one take (whisper
    tiny.en's words). Measured against the laugh's windows, "name is Kory." was a suspect (GE2E
    similarity 0.52 < doubt 0.62; 0.02 above the sure line); against the words it is not."""
    weights = ge2e_weights()
    if weights is None or not LAUGH_CLIP.is_file():
        pytest.skip("GE2E weights (resemblyzer wheel) or tests/data/media/laugh_intro.flac absent")
    from mikupal import media
    from mikupal.speaker.embed import VoiceEncoder, windows_record

    encoder = VoiceEncoder.load(weights)
    t0 = 0.9
    audio = media.decode_audio(LAUGH_CLIP, t0, 5.29, 16000)
    words = real_words([("Hey,", 1.08, 1.4), ("my", 1.54, 1.62), ("name", 1.62, 1.76), ("is", 1.76, 2.04), ("Kory.", 2.04, 2.4)])
    frames = encoder.analyse(audio)
    windows = windows_record(encoder.embed_windows(frames), t0)
    assert short_turns(encoder, frames, windows, words, t0, RULES) == []
    monkeypatch.setattr(turns_mod, "WORDED_FRACTION", 0.0)
    before = short_turns(encoder, frames, windows, words, t0, RULES)
    assert before and all(s.start >= 1.5 for s in before), before


def test_an_utterance_whose_windows_are_all_silence_has_no_suspect_and_no_error():
    """A short clip's utterance can have no speech window at all (each flagged silence): the test
    finds nothing there instead of failing the item (`reshape(0, -1)` of no rows raised)."""
    frames, enc, words, windows = conversation([(A, 1.0, ["a", "b"]), (A, 0.6, ["c"])])
    silent = windows.model_copy(update={"speech": [False] * len(windows.speech)})
    assert short_turns(enc, frames, silent, words, 0.0, RULES) == []
    assert turns_mod.stretch_similarity(enc, np.zeros(16000, np.float32), 0.0, 0.5, silent, 0.0) is None
