"""`media.VideoReader` (one decode going on across ranges, non-reference frames skipped before
`start`) gives the very frames of a fresh seek-and-decode of each range: the reference below is the
decoder loop as it was before the reader, every frame decoded from the keyframe."""

from __future__ import annotations

import math
import pickle
import shutil
import subprocess
import threading

import numpy as np
import pytest

from mikupal import media as M
from mikupal.vision.readers import VideoReaders

WIDTH = 320


def seek_and_decode(path, start: float, end: float, fps: float = 25.0, width: int = WIDTH) -> list[np.ndarray]:
    """The frames shown at start + k/fps: a fresh open, a seek to the keyframe before `start`, every frame decoded."""
    import av

    n = max(0, int(math.ceil((end - start) * fps - 1e-6)))
    got: list = [None] * n
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 1
        if start > 0:
            c.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
        k, prev = 0, None
        for frame in c.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base)
            while k < n and t > start + k / fps + 1e-6:
                got[k] = prev
                k += 1
            if k >= n:
                break
            prev = frame
        while prev is not None and k < n and start + k / fps < end:
            got[k] = prev
            k += 1
    got = [M._to_bgr(f, width) if f is not None else None for f in got]
    first = next((f for f in got if f is not None), None)
    last = max((k for k, f in enumerate(got) if f is not None), default=-1)
    return [f if f is not None else first for f in got[: last + 1]]  # decode_video's filling


def _encode(src, out, extra: list[str], before: tuple[str, ...] = ()):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *before, "-i", str(src), "-t", "12", *extra, "-c:v", "libx264", "-preset", "veryfast",
                    "-an", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def b_frame_clip(media, tmp_path_factory):
    """vr_face2 as the speed benchmark's input is encoded: 30 fps, 2 s GOP, B-frames (x264 veryfast)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    return _encode(media / "vr_face2.mp4", tmp_path_factory.mktemp("clip") / "gop2.mp4", ["-vf", "fps=30", "-g", "60"],
                   ["-stream_loop", "1"])


@pytest.fixture(scope="module")
def gap_clip(media, tmp_path_factory):
    """A variable frame rate clip with B-frames and a 1.2 s hole (3.0-4.2 s) in its frames."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    return _encode(media / "vr_face3.mp4", tmp_path_factory.mktemp("clip") / "gap.mp4",
                   ["-vf", "fps=30,select='not(between(t,3,4.2))'", "-fps_mode", "vfr", "-g", "60"])


RANGES = [
    (0.0, 0.9), (0.9, 1.7), (1.7, 1.8),  # back to back
    (2.1, 2.9), (2.95, 3.6),  # small gaps, starting inside a GOP
    (5.7, 6.0), (6.0, 7.0),  # a jump past `CONTINUE_SECONDS`, then on past the stream's end
    (1.0, 1.6), (0.0, 0.5), (0.04, 0.9),  # backwards, from the top again
]


def _check(path, ranges, threads):
    reader = M.VideoReader(path, threads)
    try:
        for a, b in ranges:
            got = M.decode_video(path, a, b, 25.0, WIDTH, reader=reader).frames
            want = seek_and_decode(path, a, b)
            assert len(got) == len(want), (a, b)
            for k, (x, y) in enumerate(zip(got, want)):
                assert np.array_equal(x, y), f"[{a}, {b}) frame {k}"
        return reader.seeks
    finally:
        reader.close()


@pytest.mark.parametrize("threads", [1, None])
def test_reader_frames_equal_a_fresh_decode(media, b_frame_clip, threads):
    for path in (media / "vr_face1.mp4", b_frame_clip):  # one long GOP without B-frames; one as the benchmark's
        seeks = _check(path, RANGES, threads)
        assert seeks <= len(RANGES) - 4  # the back-to-back and nearly back-to-back ranges went on without a seek


def test_a_frame_shown_across_a_hole_is_decoded(gap_clip, monkeypatch):
    """In the hole the frame shown is one from before `start` by more than the margin: the range is
    decoded again without skipping, and still equals the fresh decode."""
    redone = []
    check = M.VideoReader._check_shown

    def counted(self, prev):
        try:
            check(self, prev)
        except M._SkippedFrameShown:
            redone.append(prev)
            raise

    monkeypatch.setattr(M.VideoReader, "_check_shown", counted)
    _check(gap_clip, [(2.5, 2.9), (3.9, 4.6), (4.0, 4.5), (4.1, 5.0)], 1)
    assert redone


def test_single_range_matches_iter_video(media):
    got = M.decode_video(media / "vr_face1.mp4", 1.0, 2.0, 25.0, WIDTH).frames
    assert all(np.array_equal(x, y) for x, y in zip(got, seek_and_decode(media / "vr_face1.mp4", 1.0, 2.0)))


def test_readers_hand_each_thread_its_own_and_keep_the_last(media):
    path = str(media / "vr_face1.mp4")
    readers = VideoReaders(keep=1, threads=1)
    with readers.reader(path, 0.0) as r:
        M.decode_video(path, 0.0, 1.0, 25.0, WIDTH, reader=r)
    with readers.reader(path, 1.0) as again:
        assert again is r and r.can_continue(1.0)
        inside = threading.Event()
        other: list = []

        def second():
            with readers.reader(path, 1.0) as r2:
                other.append(r2)
                inside.set()

        t = threading.Thread(target=second)
        t.start()
        t.join()
        assert inside.is_set() and other[0] is not r  # checked out: another thread opens its own
    copy = pickle.loads(pickle.dumps(readers))  # a stage sent to another process: nothing open travels
    assert copy.keep == 1 and copy._take(path, 1.0) is None
    readers.close()


@pytest.mark.slow
def test_reader_on_the_speed_benchmark_input(shared):
    """The 5-minute benchmark input (benchmarks/inputs.py, built if missing): utterance-like ranges."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    from benchmarks.inputs import CLIPS, long_input

    if not all(c.is_file() for c in CLIPS):
        pytest.skip("the shared clips are missing")
    ranges = [(0.0, 2.69), (3.34, 4.78), (5.83, 8.73), (8.83, 11.35), (11.63, 15.73), (15.73, 17.21), (61.3, 63.0),
              (63.0, 64.1), (240.5, 243.2), (120.0, 121.0)]
    for threads in (1, None):
        assert _check(long_input(5), ranges, threads) <= 5
