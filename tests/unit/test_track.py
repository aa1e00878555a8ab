"""IoU tracker, gap filling, smoothing and shot cuts on synthetic boxes and frames."""

from __future__ import annotations

import numpy as np
import pytest

from mikupal.vision.track import (
    detection_frames,
    face_ends,
    frame_look,
    histogram_distances,
    iou_matrix,
    moving_average,
    shot_cuts,
    shot_ranges,
    track_faces,
)


def face(x: float, y: float, side: float = 50.0, score: float = 0.9) -> list[float]:
    return [x, y, x + side, y + side, score]


def schedule(n: int, every: int, cuts=(), boxes_at=None) -> list:
    """Detections on the scheduled frames only: `boxes_at(k)` -> list of [x1, y1, x2, y2, s]."""
    dets = [None] * n
    for k in detection_frames(n, every, cuts):
        rows = boxes_at(k)
        dets[k] = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    return dets


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]], dtype=float)
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0)
    assert m[0, 1] == pytest.approx(50 / 150)
    assert m[0, 2] == 0 and m[1].max() == 0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_moving_average_keeps_constants_and_lines():
    x = np.stack([np.full(20, 3.0), np.arange(20.0)], axis=1)
    y = moving_average(x, 5)
    assert np.allclose(y[:, 0], 3.0)
    assert np.allclose(y[2:-2, 1], np.arange(20.0)[2:-2])  # a line stays a line away from the ends
    assert np.allclose(moving_average(x, 1), x)
    assert np.allclose(moving_average(x, 4)[2:-2, 1], np.arange(20.0)[2:-2] - 0.5)


def test_detection_frames_cover_every_shot_edge():
    assert detection_frames(12, 5) == [0, 5, 10, 11]
    frames = detection_frames(30, 5, cuts=[13])
    assert frames == [0, 5, 10, 12, 13, 18, 23, 28, 29]
    assert shot_ranges(30, [13, 0, 30, 13]) == [(0, 13), (13, 30)]
    assert detection_frames(5, 1) == [0, 1, 2, 3, 4]


def test_two_moving_faces_are_two_tracks_in_source_pixels():
    n = 50

    def at(k):  # frame pixels at scale 0.5: face A moves right, face B is still
        return [face(10 + k, 20), face(200, 30, 60)]

    tracks = track_faces(schedule(n, 5, boxes_at=at), scale=0.5, smooth_frames=5, min_track_frames=10)
    assert len(tracks) == 2
    a, b = sorted(tracks, key=lambda t: t.boxes[0][0])
    assert a.frames == list(range(n)) and b.frames == list(range(n))
    boxes = np.asarray(a.boxes)
    truth = np.array([[2 * (10 + k), 40, 2 * (60 + k), 140] for k in range(n)], dtype=float)
    # interpolation is exact for linear motion; smoothing only bends the two ends
    assert np.allclose(boxes[3:-3], truth[3:-3], atol=1e-6)
    assert np.abs(boxes - truth).max() < 4
    assert np.allclose(np.asarray(b.boxes), [[400, 60, 520, 180]] * n)
    assert len(a.detection_scores) == n and a.asd_scores == []
    assert [t.track_id for t in tracks] == [0, 1]


def test_missed_detection_is_filled_but_a_long_gap_splits():
    n = 60

    def one_miss(k):
        return [] if k == 20 else [face(100, 100)]

    tracks = track_faces(schedule(n, 5, boxes_at=one_miss), max_gap=10)
    assert len(tracks) == 1 and tracks[0].frames == list(range(n))

    def long_miss(k):
        return [] if 15 <= k <= 35 else [face(100, 100)]

    tracks = track_faces(schedule(n, 5, boxes_at=long_miss), max_gap=10)
    assert len(tracks) == 2
    assert tracks[0].frames == list(range(0, 11)) and tracks[1].frames == list(range(40, 60))


def test_a_shot_cut_splits_a_track_even_in_place():
    n = 40
    tracks = track_faces(schedule(n, 5, cuts=[17], boxes_at=lambda k: [face(100, 100)]), cuts=[17])
    assert [(t.frames[0], t.frames[-1]) for t in tracks] == [(0, 16), (17, 39)]


def test_short_tracks_are_dropped_and_far_boxes_do_not_link():
    n = 40

    def at(k):
        rows = [face(100, 100)]
        if 10 <= k <= 15:  # a flicker: two detections only
            rows.append(face(400, 100))
        if k == 30:  # a jump far away: no overlap with the face at (100, 100)
            rows.append(face(250, 250))
        return rows

    tracks = track_faces(schedule(n, 5, boxes_at=at), min_track_frames=10)
    assert len(tracks) == 1 and len(tracks[0].frames) == n


def test_empty_inputs():
    assert track_faces([None] * 10) == []
    assert track_faces([np.zeros((0, 5))] * 10) == []
    assert track_faces([]) == []


def test_shot_cuts_from_colour_histograms():
    rng = np.random.default_rng(0)
    frames = []
    for k in range(30):
        base = np.array([40, 60, 200] if k < 12 else [200, 120, 30], dtype=np.float32)  # red-ish, then blue-ish
        noise = rng.normal(0, 6, (72, 128, 3))
        frames.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    d = histogram_distances(frames)
    assert d[0] == 0 and d[12] > 0.9 and np.delete(d, 12).max() < 0.5
    assert shot_cuts(frames, 0.5) == [12]
    assert shot_cuts(frames[:12], 0.5) == []


def test_face_ends_give_time_box_and_a_look_that_tells_two_shots_apart():
    from mikupal.records import FaceTrack
    from mikupal.speaker.identity import look_distance

    rng = np.random.default_rng(1)

    def shot(bgr):
        return np.clip(np.array(bgr, dtype=np.float32) + rng.normal(0, 6, (72, 128, 3)), 0, 255).astype(np.uint8)

    frames = [shot([40, 60, 200]) for _ in range(10)] + [shot([200, 120, 30]) for _ in range(10)]
    track = FaceTrack(track_id=3, frames=[2, 3, 4, 5, 6, 7], boxes=[[10.0 + k, 0.0, 60.0 + k, 50.0] for k in range(6)])
    ends = face_ends([track], 3, frames, start=5.0, fps=25.0)
    assert ends.first_time == 5.0 + 2 / 25 and ends.last_time == 5.0 + 7 / 25
    assert ends.first_box == [10.0, 0.0, 60.0, 50.0] and ends.last_box == [15.0, 0.0, 65.0, 50.0]
    assert len(ends.first_look) == 256 and abs(sum(ends.first_look) - 1.0) < 1e-4
    assert look_distance(ends.first_look, ends.last_look) < 0.3  # one shot
    assert look_distance(ends.last_look, frame_look(frames[15])) > 0.9  # the next shot
    assert face_ends([track], 4, frames, 5.0, 25.0) is None  # no such track
