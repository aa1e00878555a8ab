"""Speaker purity and identity: voice changes, word-boundary cuts, face timelines, speaker ids.

Synthetic numbers for the rules; the real GE2E weights (from the resemblyzer wheel) on the real
voices of ../shared/media for the encoder and the voice-change search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import ge2e_weights

from mikupal.config import SegmentConfig
from mikupal.engine.collector import complete_utterances
from mikupal.records import FaceTrack, SpeechSegment, VoiceWindows, Word, join_words, segment_id
from mikupal.speaker.change import find_changes
from mikupal.speaker.global_ids import link_across_videos
from mikupal.speaker.identity import SegmentVoice, cluster, speaker_ids
from mikupal.audio.word_cuts import OVERLAPPING_SPEECH, SPEAKER_CHANGE, Removal, snap_to_boundary, split_utterance
from mikupal.records import Payload, WorkItem
from mikupal.vision.timeline import face_turns, slice_track

RNG = np.random.default_rng(0)


def voice(dim: int = 64) -> np.ndarray:
    v = RNG.normal(size=dim)
    return v / np.linalg.norm(v)


def noisy(v: np.ndarray, n: int, noise: float = 0.25) -> list[list[float]]:
    out = []
    for _ in range(n):
        x = v + RNG.normal(scale=noise / np.sqrt(len(v)), size=len(v))
        out.append((x / np.linalg.norm(x)).tolist())
    return out


def windows(embeddings: list[list[float]], hop: float = 0.5, length: float = 1.5, t0: float = 0.0) -> VoiceWindows:
    n = len(embeddings)
    starts = [t0 + i * hop for i in range(n)]
    return VoiceWindows(starts=starts, ends=[s + length for s in starts], embeddings=embeddings, speech=[True] * n)


# ---------------------------------------------------------------- voice changes (synthetic)


def test_one_voice_has_no_change():
    found = find_changes(windows(noisy(voice(), 20)), 0.75, 0.68)
    assert found.changes == [] and found.overlaps == []


def test_a_b_a_turns_give_two_changes_where_the_voice_changes():
    a, b = voice(), voice()
    w = windows(noisy(a, 10) + noisy(b, 10) + noisy(a, 10))
    found = find_changes(w, 0.75, 0.68)
    assert len(found.changes) == 2
    # window i covers [0.5 i, 0.5 i + 1.5): the voice changes between windows 9/10 and 19/20
    assert found.changes[0] == pytest.approx(5.5, abs=0.6)
    assert found.changes[1] == pytest.approx(10.5, abs=0.6)
    assert all(s < 0.75 for s in found.similarity)


def test_a_laugh_is_not_a_speaker():
    a = voice()
    emb = noisy(a, 20)
    emb[10] = voice().tolist()  # one odd window
    assert find_changes(windows(emb), 0.75, 0.68).changes == []


def test_pauses_do_not_take_part():
    a, b = voice(), voice()
    w = windows(noisy(a, 8) + noisy(b, 8))
    w.speech = [True] * 8 + [False] * 8  # the second voice sits on windows marked as pauses
    assert find_changes(w, 0.75, 0.68).changes == []


def test_windows_that_match_no_voice_are_removed():
    """Babble (several voices at once, each window unlike the next and unlike the speaker) is no
    turn of anyone: it is removed as overlapping speech."""
    a = voice()
    w = windows(noisy(a, 12) + [voice().tolist() for _ in range(4)] + noisy(a, 12))
    found = find_changes(w, 0.75, 0.68)
    assert len(found.overlaps) == 1
    s, e = found.overlaps[0]
    assert s == pytest.approx(6.0) and e == pytest.approx(7.5 + 1.5)
    # either side of it is the speaker again: any change found sits at the babble's edges
    assert all(5.0 <= t <= 10.0 for t in found.changes)


# ---------------------------------------------------------------- word-boundary cuts


def seg_with_words(spec: list[tuple[str, float, float]], start: float = 0.0, end: float | None = None) -> SpeechSegment:
    words = [Word(word=" " + w, start=a, end=b, probability=0.9) for w, a, b in spec]
    end = end if end is not None else spec[-1][2] + 0.1
    return SpeechSegment(segment_id=segment_id("vid", start), video_id="vid", source="v.mp4", start=start, end=end,
                         text="".join(w.word for w in words).strip(), words=words)


QUESTION_ANSWER = [("how", 0.1, 0.4), ("are", 0.45, 0.7), ("you", 0.75, 1.0), ("doing", 1.05, 1.5), ("today?", 1.55, 2.2),
                   ("I", 2.5, 2.6), ("am", 2.65, 2.9), ("fine", 2.95, 3.4), ("thank", 3.45, 3.8), ("you", 3.85, 4.6)]


def test_snap_prefers_the_pause():
    s = seg_with_words(QUESTION_ANSWER)
    # a change estimated half a second late still cuts in the 0.3 s pause after "today?"
    assert snap_to_boundary(s.words, 2.8) == 5


def test_question_and_answer_become_two_utterances():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    pieces, rejects = split_utterance(s, [2.6], [], SegmentConfig(min_seconds=1.0), "speaker")
    assert [p.text for p in pieces] == ["how are you doing today?", "I am fine thank you"]
    assert pieces[0].end <= pieces[1].start
    assert pieces[0].segment_id != pieces[1].segment_id
    assert rejects == []


def test_pieces_keep_whisper_spacing_and_text_is_the_joined_words():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    pieces, _ = split_utterance(s, [2.6], [Removal(3.4, 3.9, OVERLAPPING_SPEECH, "both")], SegmentConfig(min_seconds=0.5), "speaker")
    assert [p.text for p in pieces] == ["how are you doing today?", "I am fine", "you"]
    assert all(p.text == join_words(p.words) for p in pieces)
    assert pieces[1].words[0].word == " I"  # whisper's token, its leading space kept


def test_a_script_without_spaces_joins_without_them():
    chars = [("我", 0.0, 0.3), ("很", 0.3, 0.6), ("好", 0.6, 1.0), ("。", 1.0, 1.1), ("你", 1.6, 1.9), ("呢", 1.9, 2.4)]
    words = [Word(word=c, start=a, end=b, probability=0.9) for c, a, b in chars]
    s = SpeechSegment(segment_id=segment_id("vid", 0.0), video_id="vid", source="v.mp4", start=0.0, end=2.5,
                      text=join_words(words), words=words)
    pieces, _ = split_utterance(s, [1.35], [], SegmentConfig(min_seconds=0.5), "speaker")
    assert [p.text for p in pieces] == ["我很好。", "你呢"]


def test_a_short_piece_is_a_speaker_change_reject_and_spans_tile_the_utterance():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    # a change late in the utterance: the cut lands between "thank" and "you", too little is left after it
    pieces, rejects = split_utterance(s, [4.0], [], SegmentConfig(min_seconds=2.0), "speaker", "voice change")
    assert [p.text for p in pieces] == ["how are you doing today? I am fine thank"]
    assert [r.reason for r in rejects] == [SPEAKER_CHANGE]
    assert rejects[0].start == pytest.approx(3.825) and rejects[0].end == pytest.approx(4.7)
    assert pieces[0].end <= rejects[0].start
    assert "voice change" in rejects[0].message


def test_a_removed_stretch_is_an_overlapping_speech_reject():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    pieces, rejects = split_utterance(s, [], [Removal(2.4, 3.5, OVERLAPPING_SPEECH, "both")], SegmentConfig(min_seconds=1.0), "vision")
    assert [p.text for p in pieces] == ["how are you doing today?", "thank you"]
    assert [r.reason for r in rejects] == [OVERLAPPING_SPEECH]
    covered = sum(p.end - p.start for p in pieces) + sum(r.end - r.start for r in rejects)
    assert covered == pytest.approx(4.7, abs=0.5)  # only the padding-free pause edges are left out


# ---------------------------------------------------------------- pieces and the writer's count


def test_pieces_share_their_utterance_and_the_writer_waits_for_all():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    item = WorkItem(source="v.mp4", video_id="vid", status="segment", data=Payload(segment=s))
    pieces, rejects = split_utterance(s, [2.6], [], SegmentConfig(min_seconds=1.0), "speaker")
    out = item.pieces(pieces, rejects)
    assert [it.origin for it in out] == [s.segment_id] * 2
    assert sum(it.share for it in out) == pytest.approx(1.0)
    assert complete_utterances(out[:1]) == 0
    assert complete_utterances(out) == 1
    # a piece cut again (the vision stage) still adds up
    again = out[1].pieces([out[1].data.segment.model_copy(update={"segment_id": "vid_x1"}),
                           out[1].data.segment.model_copy(update={"segment_id": "vid_x2"})], [])
    assert complete_utterances([out[0], *again]) == 1


def test_nothing_left_drops_the_item_with_exactly_the_span_rejects():
    s = seg_with_words(QUESTION_ANSWER, start=0.0, end=4.7)
    item = WorkItem(source="v.mp4", video_id="vid", status="segment", data=Payload(segment=s))
    pieces, rejects = split_utterance(s, [2.4], [], SegmentConfig(min_seconds=3.0), "speaker")
    out = item.pieces(pieces, rejects)
    assert len(out) == 1 and out[0].status == "dropped"
    assert {r.reason for r in out[0].rejects} == {SPEAKER_CHANGE} and len(out[0].rejects) == 2


# ---------------------------------------------------------------- face timelines


def track(tid: int, n: int, speaking: list[tuple[int, int]], box=(0, 0, 100, 100)) -> FaceTrack:
    scores = np.full(n, -2.0)
    for a, b in speaking:
        scores[a:b] = 2.0
    return FaceTrack(track_id=tid, frames=list(range(n)), boxes=[list(map(float, box))] * n, asd_scores=scores.tolist())


def test_one_face_then_another_is_a_change():
    n = 200
    turns = face_turns([track(0, n, [(0, 90)]), track(1, n, [(100, 200)])], n, 0.0, None)
    assert turns.changes == [pytest.approx(95 / 25.0, abs=0.1)]
    assert turns.overlaps == []


def test_both_faces_speaking_is_an_overlap():
    n = 200
    turns = face_turns([track(0, n, [(0, 120)]), track(1, n, [(80, 200)])], n, 0.0, None)
    assert len(turns.overlaps) == 1
    a, b = turns.overlaps[0]
    assert a == pytest.approx(80 / 25, abs=0.2) and b == pytest.approx(120 / 25, abs=0.2)


def test_a_brief_flicker_is_no_turn_and_one_face_is_never_cut():
    n = 200
    flicker = face_turns([track(0, n, [(0, 200)]), track(1, n, [(100, 106)])], n, 0.0, None)
    assert flicker.changes == [] and flicker.overlaps == []
    assert face_turns([track(0, n, [(0, 80), (120, 200)])], n, 0.0, None).changes == []


def test_the_tail_of_the_previous_turn_at_the_start_is_seen():
    n = 150
    turns = face_turns([track(0, n, [(0, 7)]), track(1, n, [(10, 150)])], n, 0.0, None)
    assert len(turns.changes) == 1 and turns.changes[0] < 0.5


def test_slice_track_renumbers_frames():
    t = track(3, 100, [(0, 100)])
    s = slice_track(t, 40, 60)
    assert s.frames == list(range(20)) and len(s.asd_scores) == 20 and s.track_id == 3
    assert slice_track(t, 120, 130) is None


# ---------------------------------------------------------------- identity


LEFT, RIGHT = [0.0, 0.0, 300.0, 300.0], [400.0, 0.0, 700.0, 300.0]


def test_voices_cluster_into_people_numbered_by_first_appearance():
    a, b = voice(), voice()
    segs = [SegmentVoice(i * 5.0, i * 5.0 + 4, e, [0, 0, 10, 10]) for i, e in enumerate(noisy(b, 1) + noisy(a, 2) + noisy(b, 2))]
    assert cluster(segs, 0.75) == [0, 1, 1, 0, 0]
    assert speaker_ids("vid", segs, 0.75) == ["vid_S1", "vid_S2", "vid_S2", "vid_S1", "vid_S1"]


def test_a_two_shot_layout_overrides_similar_voices():
    v = voice()
    e1, e2 = noisy(v, 2, noise=0.05)  # two people whose voices the encoder cannot tell apart
    segs = [SegmentVoice(0, 4, e1, LEFT, [RIGHT]), SegmentVoice(5, 9, e2, RIGHT, [LEFT])]
    assert cluster(segs, 0.75) == [0, 1]
    # ... and the same place in the same two-shot is the same person, however the voice sounds
    segs = [SegmentVoice(0, 4, voice().tolist(), LEFT, [RIGHT]), SegmentVoice(5, 9, voice().tolist(), LEFT, [RIGHT])]
    assert cluster(segs, 0.75) == [0, 0]


def test_close_ups_do_not_link_by_place():
    segs = [SegmentVoice(0, 4, voice().tolist(), LEFT), SegmentVoice(5, 9, voice().tolist(), LEFT)]
    assert cluster(segs, 0.75) == [0, 1]


def test_global_links_never_join_two_speakers_of_one_video():
    a, b = voice(), voice()
    links = link_across_videos([("v1_S1", noisy(a, 1)[0]), ("v1_S2", noisy(a, 1)[0]), ("v2_S1", noisy(b, 1)[0]),
                                ("v3_S1", noisy(b, 1)[0])], 0.8)
    assert links["v1_S1"] != links["v1_S2"]
    assert links["v2_S1"] == links["v3_S1"]


# ---------------------------------------------------------------- the real encoder on real voices

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "media"


@pytest.fixture(scope="module")
def encoder():
    weights = ge2e_weights()
    if weights is None or not SHARED.is_dir():
        pytest.skip("GE2E weights (resemblyzer wheel) or ../shared/media absent")
    from mikupal.speaker.embed import VoiceEncoder

    return VoiceEncoder.load(weights)


def test_ge2e_tells_the_five_voices_apart(encoder):
    from mikupal import media
    from mikupal.speaker.embed import mean_voice, windows_record

    voices = {}
    for i in range(1, 6):
        w = windows_record(encoder.embed_windows(media.decode_audio(SHARED / f"vr_face{i}.mp4")), 0.0)
        voices[i] = np.asarray(mean_voice(w))
        own = np.asarray(w.embeddings)[np.asarray(w.speech)] @ voices[i]
        assert own.min() > 0.75, f"vr_face{i}: a window of its own voice at {own.min():.2f}"
    for i in voices:
        for j in voices:
            if i < j:
                assert voices[i] @ voices[j] < 0.7, (i, j)


def test_voice_changes_on_the_stereo_diarization_file(encoder):
    """One voice per channel: left alone, then right alone, then left again."""
    import soundfile as sf

    from mikupal.speaker.embed import windows_record

    stereo, rate = sf.read(SHARED / "fw_stereo_diarization.wav", dtype="float32")
    assert rate == 16000
    left, right = stereo[:, 0], stereo[:, 1]
    a = np.concatenate([left[: int(4.9 * rate)], right[int(0.3 * rate) : int(2.3 * rate)], left[: int(2.5 * rate)]])
    found = find_changes(windows_record(encoder.embed_windows(a), 0.0), 0.75, 0.68)
    assert len(found.changes) == 2
    assert found.changes[0] == pytest.approx(4.9, abs=0.6)
    assert found.changes[1] == pytest.approx(6.9, abs=0.6)
    # one channel alone is one voice
    assert find_changes(windows_record(encoder.embed_windows(left), 0.0), 0.75, 0.68).changes == []
