import json
import shutil
import subprocess

import numpy as np
import pytest

from mikupal import media as M
from mikupal.errors import StageError

CLIPS = [f"vr_face{i}.mp4" for i in range(1, 6)]


def ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,r_frame_rate,width,height",
         "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
@pytest.mark.parametrize("name", CLIPS)
def test_probe_matches_ffprobe(media, name):
    v = M.probe(media / name)
    ref = ffprobe(media / name)
    vs = next(s for s in ref["streams"] if s["codec_type"] == "video")
    num, den = map(int, vs["r_frame_rate"].split("/"))
    fps = num / den
    assert abs(v.duration - float(ref["format"]["duration"])) <= 1.0 / fps
    assert (v.width, v.height) == (vs["width"], vs["height"])
    assert v.fps == pytest.approx(fps)
    assert v.has_audio and v.has_video and v.rotation == 0
    assert len(v.video_id) == 20




def test_probe_audio_only(media):
    v = M.probe(media / "jfk.flac")
    assert v.has_audio and not v.has_video and v.duration == pytest.approx(11.0, abs=0.05)


def test_corrupt_files_give_clear_errors(tmp_path, media):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    half = tmp_path / "half.mp4"
    data = (media / "vr_face1.mp4").read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(StageError) as e:
        M.probe(text)
    assert e.value.reason == "unreadable_container"
    with pytest.raises(StageError) as e:
        M.probe(empty)
    assert e.value.reason == "empty_file"
    with pytest.raises(StageError) as e:
        M.probe(tmp_path / "missing.mp4")
    assert e.value.reason == "missing_file"
    # a truncated MP4 (an incomplete download): its boxes run past the end of the file
    with pytest.raises(StageError) as e:
        M.probe(half)
    assert e.value.reason == "truncated_file" and "box runs to byte" in e.value.message


def test_decode_audio_range(media):
    full = M.decode_audio(media / "jfk.flac")
    part = M.decode_audio(media / "jfk.flac", 2.0, 4.0)
    assert full.dtype == np.float32 and full.ndim == 1
    assert abs(len(full) - 11.0 * 16000) < 160
    assert len(part) == 32000
    # the range is the full decode's slice (up to the resampler's sub-sample phase)
    assert np.corrcoef(part[1000:31000], full[33000:63000])[0, 1] > 0.97


def test_decode_video_range_at_25fps(media):
    vf = M.decode_video(media / "vr_face1.mp4", 1.0, 3.0, fps=25, width=320)
    assert len(vf) == 50
    assert vf.frames[0].shape == (320, 320, 3)
    assert vf.scale == pytest.approx(320 / 700)


def test_write_clip_round_trip(tmp_path, media):
    vf = M.decode_video(media / "vr_face2.mp4", 0.0, 2.0, fps=25, width=224)
    audio = M.decode_audio(media / "vr_face2.mp4", 0.0, 2.0)
    out = tmp_path / "c.mp4"
    M.write_clip(out, vf.frames, 25, audio, 16000)
    v = M.probe(out)
    assert v.has_audio and v.has_video and v.width == 224
    assert v.duration == pytest.approx(2.0, abs=0.1)


def _ffmpeg_yuv(tmp_path, pix_fmt, size="640x360"):
    """A 5-frame test-pattern clip in `pix_fmt`."""
    out = tmp_path / f"pattern_{pix_fmt}.mp4"  # H.264 signals the colour range (full for yuvj420p)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-frames:v", "5",
                    "-pix_fmt", pix_fmt, "-c:v", "libx264", "-qp", "0" if pix_fmt == "yuv420p" else "10", str(out)], check=True)
    return out


@pytest.mark.parametrize("width", [None, 350])
def test_fast_i420_conversion_matches_swscale(media, width):
    """The OpenCV plane-by-plane path gives FFmpeg's picture (within a grey level on average)."""
    import av

    with av.open(str(media / "vr_face1.mp4")) as c:
        frame = next(c.decode(video=0))
    assert frame.format.name == "yuv420p"
    fast = M._to_bgr(frame, width)
    w = h = width or frame.width
    # the same kind of downscale (pixel-area averaging): what is compared is the colour conversion
    ref = frame.to_ndarray(format="bgr24", width=w, height=h, interpolation="AREA")
    assert fast.shape == ref.shape == (h, w, 3) and fast.dtype == np.uint8
    assert np.abs(fast.astype(int) - ref).mean() < 1.5


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("pix_fmt,size", [("yuv444p", "640x360"), ("yuvj420p", "640x360"), ("yuv420p", "642x362")])
def test_other_layouts_take_swscale(tmp_path, pix_fmt, size):
    import av

    with av.open(str(_ffmpeg_yuv(tmp_path, pix_fmt, size))) as c:
        frame = next(c.decode(video=0))
    if pix_fmt == "yuv420p":  # 642/2 = 321: an odd output chroma width
        assert M._i420_to_bgr(frame, 322, 181) is None
    else:
        assert M._i420_to_bgr(frame, frame.width, frame.height) is None
    img = M._to_bgr(frame, 320)
    assert img.shape[1] == 320 and img.dtype == np.uint8


def test_decode_threads_do_not_change_frames(media):
    a = M.decode_video(media / "vr_face1.mp4", 1.0, 2.0, 25.0, 320)
    b = M.decode_video(media / "vr_face1.mp4", 1.0, 2.0, 25.0, 320, threads=1)
    assert len(a) == len(b) == 25
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
