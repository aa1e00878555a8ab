"""Speaker attribution rules on synthetic tracks and ASD scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mikupal.config import AsdConfig, FacesConfig
from mikupal.records import FaceTrack
from mikupal.vision.attribution import (
    FACE_TOO_SMALL,
    LOW_CONFIDENCE,
    NO_ACTIVE_SPEAKER,
    NO_FACE,
    OVERLAPPING_SPEAKERS,
    attribute,
    attribute_with,
    scored_windows,
    speaker_boxes,
    track_stats,
)

N = 100


def track(tid: int, scores, frames=None, x: float = 100.0, side: float = 80.0) -> FaceTrack:
    frames = list(range(N)) if frames is None else list(frames)
    scores = np.broadcast_to(np.asarray(scores, dtype=float), (len(frames),))
    boxes = [[x + k * 0.5, 50.0, x + k * 0.5 + side, 50.0 + side] for k in frames]
    return FaceTrack(track_id=tid, frames=frames, boxes=boxes, asd_scores=[float(s) for s in scores])


def speaking(frac: float, hi: float = 2.0, lo: float = -3.0, n: int = N) -> np.ndarray:
    s = np.full(n, lo)
    s[: int(round(frac * n))] = hi
    return s


def test_single_speaking_face_is_the_speaker():
    r = attribute([track(0, speaking(0.8))], N)
    assert r.ok and r.reason is None and r.speaker_track == 0
    assert len(r.boxes) == N and r.boxes[10] == [105.0, 50.0, 185.0, 130.0]
    assert r.speaking_fraction == pytest.approx(0.8)
    assert r.asd_score == pytest.approx(0.8 * 2 + 0.2 * -3)


def test_no_tracks_is_no_face():
    r = attribute([], N)
    assert r.reason == NO_FACE and not r.ok and r.speaker_track is None
    assert attribute([track(0, 1.0)], 0).reason == NO_FACE


def test_small_faces_are_too_small():
    r = attribute([track(0, speaking(0.9), side=30), track(1, -2.0, side=20, x=300)], N, min_face_px=40)
    assert r.reason == FACE_TOO_SMALL and "30 px" in r.message


def test_a_face_seen_briefly_is_no_face():
    r = attribute([track(0, 2.0, frames=range(0, 30))], N, min_coverage=0.5)
    assert r.reason == NO_FACE and "30%" in r.message


def test_silent_face_means_off_screen_voice():
    r = attribute([track(0, -3.0), track(1, speaking(0.05), x=400)], N)
    assert r.reason == NO_ACTIVE_SPEAKER and "off-screen" in r.message


def test_some_but_not_enough_speaking_is_low_confidence():
    r = attribute([track(0, speaking(0.25))], N, min_speaking_fraction=0.4, min_evidence_fraction=0.15)
    assert r.reason == LOW_CONFIDENCE


def test_two_speaking_faces_close_in_score_overlap():
    r = attribute([track(0, speaking(0.8, hi=2.0)), track(1, speaking(0.8, hi=1.9), x=400)], N, overlap_margin=0.5)
    assert r.reason == OVERLAPPING_SPEAKERS


def test_the_clearly_better_of_two_speakers_wins():
    r = attribute([track(0, speaking(0.5, hi=1.0)), track(1, speaking(0.9, hi=3.0), x=400)], N, overlap_margin=0.5)
    assert r.ok and r.speaker_track == 1
    assert r.boxes[0][0] == 400.0


def test_listener_beside_speaker():
    r = attribute([track(0, -2.5), track(1, speaking(0.7), x=400)], N)
    assert r.ok and r.speaker_track == 1
    assert {s.track_id for s in r.stats} == {0, 1}


def test_unscored_frames_are_nan_and_ignored():
    s = np.full(N, np.nan)
    s[10:30] = 2.0  # one window scored: all positive
    s[60:80] = -1.0  # another: all negative
    st = track_stats(track(0, s), N)
    assert st.scored_frames == 40 and st.speaking_fraction == pytest.approx(0.5)
    assert st.asd_score == pytest.approx(0.5)
    unscored = track_stats(track(1, np.nan), N)
    assert unscored.asd_score == -math.inf and unscored.speaking_fraction == 0.0
    r = attribute([track(0, s), track(1, np.nan, x=400)], N, min_speaking_fraction=0.4)
    assert r.ok and r.speaker_track == 0


def test_speaking_fraction_counts_the_utterance_not_the_track():
    # on screen 60% of the utterance, speaking all of that: 60% of the utterance
    st = track_stats(track(0, 2.0, frames=range(20, 80)), N)
    assert st.coverage == pytest.approx(0.6) and st.speaking_fraction == pytest.approx(0.6)


def test_speaker_boxes_hold_the_ends():
    t = track(0, 1.0, frames=range(10, 20))
    b = speaker_boxes(t, 30)
    assert len(b) == 30
    assert b[0] == t.boxes[0] and b[15] == t.boxes[5] and b[29] == t.boxes[-1]


def test_attribute_with_config():
    faces, asd = FacesConfig(), AsdConfig()
    r = attribute_with([track(0, speaking(0.9), side=faces.min_face_px - 1)], N, faces, asd)
    assert r.reason == FACE_TOO_SMALL
    r = attribute_with([track(0, speaking(0.9))], N, faces, asd)
    assert r.ok


@pytest.mark.parametrize("n,budget,win", [(375, 100, 50), (1000, 100, 50), (130, 100, 50), (200, 100, 30), (200, 40, 50)])
def test_scored_windows_spread_within_budget(n, budget, win):
    w = scored_windows(n, budget, win)
    total = sum(e - s for s, e in w)
    assert total <= budget and total >= budget - len(w)
    assert all(0 <= s < e <= n for s, e in w)
    assert all(a[1] <= b[0] for a, b in zip(w, w[1:]))  # in order, no overlap
    centres = [(s + e) / 2 for s, e in w]
    assert abs(np.mean(centres) - n / 2) < n * 0.1  # spread around the middle, not piled at the start


def test_scored_windows_whole_track_when_it_fits():
    assert scored_windows(80, 100, 50) == [(0, 80)]
    assert scored_windows(500, None, 50) == [(0, 500)]
    assert scored_windows(500, 0, 50) == [(0, 500)]
    assert scored_windows(0, 100, 50) == []


def test_speaker_clip_crop_is_centred_on_the_box():
    from mikupal.vision.clip import crop_windows, relative_paths, speaker_frames

    frame = np.zeros((150, 200, 3), dtype=np.uint8)  # frame pixels = source pixels x 0.5
    frame[25:45, 50:70] = 255  # the face: source box (100, 50, 140, 90)
    boxes = np.array([[100.0, 50.0, 140.0, 90.0]] * 5)
    win = crop_windows(boxes, margin=0.5)
    assert np.allclose(win, [[120.0, 70.0, 80.0]] * 5)  # side = 40 x (1 + 2 x 0.5)
    crops = speaker_frames([frame] * 5, boxes, scale=0.5, size=64, margin=0.5)
    assert len(crops) == 5 and crops[0].shape == (64, 64, 3)
    c = crops[2][:, :, 0].astype(float)
    assert c[20:44, 20:44].mean() > 240  # the face fills the middle half
    assert c[:12].mean() < 15 and c[-12:].mean() < 15 and c[:, :12].mean() < 15 and c[:, -12:].mean() < 15
    # a box near the edge: the crop leaves the frame and is padded black, not shifted
    edge = speaker_frames([frame], np.array([[0.0, 0.0, 40.0, 40.0]]), scale=0.5, size=64, margin=0.5)[0]
    assert edge[:16, :16].max() == 0
    assert relative_paths("v", "v_000001000") == {
        "audio": "audio/v/v_000001000.flac",
        "clip": "clips/v/v_000001000.mp4",
        "debug": "debug/v/v_000001000.mp4",
    }


def test_the_short_first_pass_stops_only_on_a_clear_speaker(tmp_path):
    """One face speaking on >= early_stop_fraction of the voice and no other face with any evidence:
    stop; a reject, a weaker speaker or a second face that might talk: score the full budget."""
    from mikupal.config import compose
    from mikupal.vision.attribution import Attribution, TrackStats
    from mikupal.vision.search import SpeakerSearch

    cfg = compose([f"output={tmp_path}", "asd.early_stop_fraction=0.8", "asd.min_evidence_fraction=0.15"])
    stage = SpeakerSearch(None, cfg.faces, cfg.asd)  # the policy needs no model

    def stats(i, frac):
        return TrackStats(track_id=i, face_px=100, coverage=1.0, scored_frames=25, asd_score=1.0, speaking_fraction=frac)

    clear = Attribution(speaker_track=0, speaking_fraction=0.9, stats=[stats(0, 0.9), stats(1, 0.05)])
    assert stage.clear_speaker(clear)
    assert stage.clear_speaker(clear, offset=stage.ac.max_offset_frames - 1)
    assert not stage.clear_speaker(clear, offset=-stage.ac.max_offset_frames), "an offset at the search's edge"
    assert not stage.clear_speaker(Attribution(speaker_track=0, speaking_fraction=0.7, stats=[stats(0, 0.7)]))
    assert not stage.clear_speaker(Attribution(speaker_track=0, speaking_fraction=0.9, stats=[stats(0, 0.9), stats(1, 0.2)]))
    assert not stage.clear_speaker(Attribution(reason="low_confidence", stats=[stats(0, 0.3)]))
