"""The only module that opens media containers and touches codecs (PyAV, libsndfile, OpenCV's
image codecs); everything else passes paths and arrays.

It owns:
- probing: `probe` (streams, duration, fps, rotation; one frame decoded), `truncation`,
  `display_size`, `duration_seconds`;
- decoding by time: `decode_audio` (a range to float32 at any rate), `iter_video` /
  `decode_video` / `frame_at` (a range at a target fps, seeking to it, never decoding the whole
  file), `VideoReader` (an open video whose decode goes on from one range to the next);
- the work files by sample index (WAV/FLAC through libsndfile, exact and cheap per utterance):
  `audio_info`, `read_samples`, `iter_samples`, `audio_writer` (streamed, published atomically),
  `write_scratch_wav` (a private file for a tool that reads files);
- writing what the dataset keeps: `write_audio` (FLAC), `write_clip` (H.264 + AAC MP4),
  `write_image` (JPEG), each through `atomic`;
- what the labelers send: `wav_bytes`, `jpeg_frames`.
Decoding and probing failures are a `StageError` with a stable reason code, so callers turn them
into a reject row; the work-file readers raise libsndfile's errors (those files are our own).
tests/unit/test_media_ownership.py keeps every other module off these libraries.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from . import atomic
from .errors import StageError
from .ids import content_id
from .records import SourceVideo, StreamInfo

ANALYSIS_RATE = 16000

# FFmpeg's own logging stays off (PyAV's default, level None): a Python log callback called from
# FFmpeg's decoder threads can deadlock a decode running in a worker thread (as Ray actors do).


def _open(path: str | os.PathLike):
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as e:
        raise StageError("missing_file", f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise StageError("not_a_file", f"{path}: is a directory") from e
    except av.error.InvalidDataError as e:
        raise StageError("unreadable_container", f"{path}: not a media file ({e})") from e
    except av.error.FFmpegError as e:
        raise StageError("unreadable_container", f"{path}: {e}") from e


def probe(path: str | os.PathLike, source: Optional[str] = None, video_id: Optional[str] = None) -> SourceVideo:
    """Read streams, duration, fps and rotation; decode one frame to prove the video stream is readable."""
    p = Path(path)
    if not p.exists():
        raise StageError("missing_file", f"{path}: no such file")
    if p.is_dir():
        raise StageError("not_a_file", f"{path}: is a directory")
    size = p.stat().st_size
    if size == 0:
        raise StageError("empty_file", f"{path}: zero bytes")
    vid = video_id or content_id(p)
    cut = truncation(p, size)
    if cut:
        raise StageError("truncated_file", f"{path}: {cut} (an incomplete download or copy)")
    with _open(p) as c:
        streams: list[StreamInfo] = []
        for s in c.streams:
            dur = float(s.duration * s.time_base) if s.duration and s.time_base else None
            info = StreamInfo(index=s.index, kind=s.type, codec=s.codec_context.name if s.codec_context else None, duration=dur)
            if s.type == "video":
                rate = s.guessed_rate or s.base_rate or s.average_rate  # ffprobe's r_frame_rate
                info.width = s.codec_context.width
                info.height = s.codec_context.height
                info.fps = float(rate) if rate else None
            elif s.type == "audio":
                info.sample_rate = s.codec_context.sample_rate
                info.channels = s.codec_context.channels
            streams.append(info)
        duration = c.duration / av.time_base if c.duration else max((s.duration or 0.0) for s in streams) if streams else 0.0
        videos = [s for s in streams if s.kind == "video" and (s.width or 0) > 0]
        audios = [s for s in streams if s.kind == "audio" and (s.sample_rate or 0) > 0]
        rotation = 0
        width = height = None
        fps = None
        if videos:
            v = videos[0]
            width, height, fps = v.width, v.height, v.fps
            try:
                frame = next(c.decode(video=0))
                rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            except (StopIteration, av.error.FFmpegError):
                videos = []  # a video stream that yields no frame is as good as none
            if rotation in (90, 270):
                width, height = height, width
        fmt = c.format.name if c.format else None
    if not duration or duration <= 0 or not math.isfinite(duration):
        raise StageError("zero_duration", f"{path}: container reports no duration")
    return SourceVideo(
        video_id=vid,
        source=str(source if source is not None else path),
        path=str(p.resolve()),
        size_bytes=size,
        duration=float(duration),
        streams=streams,
        has_video=bool(videos),
        has_audio=bool(audios),
        width=width,
        height=height,
        fps=fps,
        rotation=rotation,
        format_name=fmt,
    )


_BOX_TYPE = bytes(range(0x20, 0x7F))  # box types are four printable characters


def truncation(path: str | os.PathLike, size: Optional[int] = None) -> Optional[str]:
    """Why an ISO-BMFF file (MP4, MOV, M4A, 3GP) is cut short, or None: walks the top-level boxes'
    headers (a few reads, whatever the file's length) and checks that the last one ends at the end
    of the file. A truncated MP4 has lost its index (moov at the end) or part of its media (mdat)."""
    size = os.path.getsize(path) if size is None else size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None  # not ISO-BMFF: FFmpeg judges it
        pos = 0
        for _ in range(100_000):
            if pos == size:
                return None
            f.seek(pos)
            hdr = f.read(16)
            if len(hdr) < 8:
                return f"the file ends inside a box header at byte {pos}"
            box_size, box_type = int.from_bytes(hdr[:4], "big"), hdr[4:8]
            if box_type.strip(_BOX_TYPE):
                return None  # not a box header: leave it to FFmpeg
            if box_size == 1:
                if len(hdr) < 16:
                    return f"the file ends inside the '{box_type.decode()}' box header at byte {pos}"
                box_size = int.from_bytes(hdr[8:16], "big")
            elif box_size == 0:
                return None  # the last box runs to the end of the file, whatever its length
            if box_size < 8:
                return None
            if pos + box_size > size:
                return f"the '{box_type.decode()}' box runs to byte {pos + box_size} but the file has {size} bytes"
            pos += box_size
    return None


def _audio_stream(c):
    """The default audio stream if one is marked, else the first: a second commentary track is ignored."""
    audios = list(c.streams.audio)
    if not audios:
        raise StageError("no_audio_stream", "the file has no audio stream")
    for s in audios:
        if s.disposition & av.stream.Disposition.default:
            return s
    return audios[0]


def decode_audio(
    path: str | os.PathLike,
    start: float = 0.0,
    end: Optional[float] = None,
    sample_rate: int = ANALYSIS_RATE,
    mono: bool = True,
) -> np.ndarray:
    """Decode [start, end) seconds to float32 at `sample_rate`: shape [n] if mono else [channels, n]."""
    with _open(path) as c:
        stream = _audio_stream(c)
        stream.thread_type = "AUTO"
        layout = "mono" if mono else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        if start > 0:
            c.seek(int(max(0.0, start - 0.5) / stream.time_base), stream=stream, backward=True, any_frame=False)
        chunks: list[np.ndarray] = []
        t0: Optional[float] = None
        try:
            for frame in c.decode(stream):
                if frame.pts is None:
                    continue
                ft = float(frame.pts * frame.time_base)
                if end is not None and ft >= end:
                    break
                for out in resampler.resample(frame):
                    if t0 is None:
                        t0 = float(out.pts * out.time_base) if out.pts is not None else ft
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as e:
            if not chunks:
                raise StageError("audio_decode_failed", str(e)) from e
            # a truncated file: keep what decoded, the caller sees a shorter signal
    channels = 1 if mono else 2
    if not chunks:
        return np.zeros((0,) if mono else (channels, 0), dtype=np.float32)
    audio = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    t0 = t0 or 0.0
    skip = max(0, int(round((start - t0) * sample_rate)))
    audio = audio[:, skip:]
    if end is not None:
        audio = audio[:, : max(0, int(round((end - start) * sample_rate)))]
    return audio[0] if mono else audio


@dataclass
class VideoFrames:
    """Frames sampled at `fps` from [start, end): `frames[k]` shows time start + k / fps."""

    frames: list[np.ndarray]  # BGR uint8 [h, w, 3] at the requested scale
    fps: float
    start: float
    scale: float  # frame pixels = source pixels * scale

    def __len__(self) -> int:
        return len(self.frames)


def iter_video(
    path: str | os.PathLike,
    start: float,
    end: float,
    fps: float = 25.0,
    width: Optional[int] = None,
    threads: Optional[int] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (k, BGR frame) for the target times start + k/fps in [start, end), seeking first
    (`VideoReader.frames` on a reader of its own). `threads`: decoder threads (None = FFmpeg's
    choice; 1 where workers already fill the cores)."""
    with VideoReader(path, threads) as reader:
        yield from reader.frames(start, end, fps, width)


class VideoReader:
    """A video file opened once and decoded forward across ranges: a range that starts a little
    after the last one ended goes on decoding where that one stopped instead of seeking back to
    the keyframe before it (utterances of one video follow one another closely, and a seek
    decodes up to a GOP of frames before `start` for nothing). Frames are the same either way.

    Before `start` (frames never yielded) the decoder skips the frames no other frame refers to
    (`skip_frame` NONREF; B-frames of most H.264/HEVC), switched back `SKIP_MARGIN` seconds before
    `start`. One reader serves one thread at a time."""

    CONTINUE_SECONDS = 2.0  # go on decoding rather than seek when `start` is this close ahead
    SKIP_MARGIN = 0.5  # seconds before `start` decoded whole (more for a stream under 8 fps)

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None):
        self.path, self._threads = str(path), threads
        self._open()
        rate = self._stream.guessed_rate or self._stream.average_rate
        self._margin = max(self.SKIP_MARGIN, 4.0 / float(rate)) if rate else self.SKIP_MARGIN
        self._decoded: Optional[Iterator] = None  # the decoder's frames from the last seek on
        self._held: list = []  # (time, frame): the last frame before the end of the last range and the next one
        self._skip_before = -math.inf  # packets before this time are decoded with NONREF
        self._skipped = False  # some packet of the current range went to the decoder with NONREF
        self.seeks = 0  # ranges that started a decode (open or seek; the others went on from the last one)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._decoded = None
        self._held = []
        self._c.close()

    def can_continue(self, start: float) -> bool:
        """Whether a range at `start` goes on from the last one (no seek)."""
        if self._decoded is None or not self._held:
            return False
        last = self._held[-1][0]
        return self._held[0][0] <= start and start - last <= self.CONTINUE_SECONDS

    def _frames_from_decoder(self) -> Iterator:
        """(time, frame) for every decoded frame with a time; NONREF while before `_skip_before`."""
        cc, tb = self._stream.codec_context, self._stream.time_base
        for packet in self._c.demux(self._stream):
            skip = packet.pts is not None and float(packet.pts * tb) < self._skip_before
            self._skipped |= skip
            cc.skip_frame = "NONREF" if skip else "DEFAULT"
            for frame in packet.decode():
                if frame.pts is not None:
                    yield float(frame.pts * frame.time_base), frame

    def _position(self, start: float) -> Iterator:
        """The frames from which the range at `start` is read: the held ones and the decoder's,
        after a seek unless the last range's decode can go on."""
        self._skip_before, self._skipped = start - self._margin, False
        if not self.can_continue(start):
            self._held = []
            if start > 0:
                self._c.seek(int(start / self._stream.time_base), stream=self._stream, backward=True, any_frame=False)
            elif self.seeks:  # from the top: as a fresh open does (a seek to 0 may land past the first frames)
                self._c.close()
                self._open()
            self._decoded = self._frames_from_decoder()
            self.seeks += 1
        held, self._held = self._held, []
        yield from held
        for got in self._decoded:  # not `yield from`: closing this generator must not close the decoder's
            yield got

    def _open(self) -> None:
        self._c = _open(self.path)
        if not self._c.streams.video:
            self._c.close()
            raise StageError("no_video_stream", "the file has no video stream")
        self._stream = self._c.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self._threads:
            self._stream.codec_context.thread_count = int(self._threads)

    def frames(self, start: float, end: float, fps: float = 25.0, width: Optional[int] = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (k, BGR frame) for the target times start + k/fps in [start, end).

        Each target time takes the latest decoded frame at or before it (frames repeat or drop as
        the rates differ). `width` scales frames down in the colour conversion, which runs only
        for frames that are yielded (not for the frames before `start`, nor for the ones a lower
        target rate drops: a quarter of the decode cost at 30 -> 25 fps)."""
        try:
            yield from self._read(start, end, fps, width)
        except _SkippedFrameShown:  # a frame skipped before the margin is the one shown at `start`
            self._decoded, self._held, margin = None, [], self._margin
            self._margin = math.inf  # no skipping: decode it whole
            try:
                yield from self._read(start, end, fps, width)
            finally:
                self._margin = margin

    def _read(self, start: float, end: float, fps: float, width: Optional[int]) -> Iterator[tuple[int, np.ndarray]]:
        n_targets = max(0, int(math.ceil((end - start) * fps - 1e-6)))
        if n_targets == 0:
            return
        k = 0
        prev, img = None, None  # (time, frame): the last frame at or before the current target; img: it converted, once used
        try:
            for t, frame in self._position(start):
                while k < n_targets and t > start + k / fps + 1e-6:
                    if k == 0:
                        self._check_shown(prev)
                    if prev is not None:
                        img = _to_bgr(prev[1], width) if img is None else img
                        yield k, img
                    k += 1
                if k >= n_targets:
                    self._held = [p for p in (prev, (t, frame)) if p is not None]
                    return
                prev, img = (t, frame), None
            self._decoded = None  # the stream's end
            if k == 0:
                self._check_shown(prev)
            if prev is not None and img is None:
                img = _to_bgr(prev[1], width)
            while prev is not None and k < n_targets and start + k / fps < end:
                # past the last decoded frame: hold it until the stream's end (within one frame)
                yield k, img
                k += 1
        except av.error.FFmpegError as e:
            self._decoded, self._held = None, []
            if k == 0 and prev is None:
                raise StageError("video_decode_failed", str(e)) from e

    def _check_shown(self, prev) -> None:
        """Raise when the frame shown at the first target may be one the decoder skipped."""
        if self._skipped and (prev is None or prev[0] < self._skip_before):
            raise _SkippedFrameShown


class _SkippedFrameShown(Exception):
    """The first target of a range falls on a frame `VideoReader` skipped (a gap in a variable
    frame rate stream longer than its margin): the range is decoded again without skipping."""


def _to_bgr(frame, width: Optional[int]) -> np.ndarray:
    """The frame as BGR uint8, scaled down to `width` (the displayed width) and rotated upright."""
    rot = int(getattr(frame, "rotation", 0) or 0) % 360
    w_out, h_out = frame.width, frame.height
    if width and frame.width > width:
        if rot in (0, 180):
            w_out, h_out = width, int(round(frame.height * width / frame.width / 2)) * 2
        else:  # rotated: scale the side that becomes the width
            w_out, h_out = int(round(frame.width * width / frame.height / 2)) * 2, width
    img = _i420_to_bgr(frame, w_out, h_out)
    if img is None:
        if (w_out, h_out) == (frame.width, frame.height):
            img = frame.to_ndarray(format="bgr24")
        else:
            img = frame.to_ndarray(format="bgr24", width=w_out, height=h_out)
    if rot:
        # display matrix rotation is counter-clockwise degrees
        img = np.ascontiguousarray(np.rot90(img, k=rot // 90))
    return img


def _i420_to_bgr(frame, w_out: int, h_out: int) -> Optional[np.ndarray]:
    """Limited-range 8-bit 4:2:0 (most H.264/HEVC video) scaled and converted with OpenCV, plane by
    plane: ~4x less CPU than FFmpeg's swscale to bgr24 at 720p, the same picture within one grey
    level on average. None for any other layout (the caller converts with swscale)."""
    if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2 or w_out % 2 or h_out % 2:
        return None
    if int(getattr(frame, "color_range", 0) or 0) == 2:  # full range (JPEG levels): swscale knows it
        return None
    import cv2

    w, h = frame.width, frame.height
    planes = frame.planes
    y = np.frombuffer(planes[0], np.uint8).reshape(h, planes[0].line_size)[:, :w]
    u = np.frombuffer(planes[1], np.uint8).reshape(h // 2, planes[1].line_size)[:, : w // 2]
    v = np.frombuffer(planes[2], np.uint8).reshape(h // 2, planes[2].line_size)[:, : w // 2]
    i420 = np.empty((h_out * 3 // 2, w_out), np.uint8)
    flat = i420.reshape(-1)
    n_y, n_c = w_out * h_out, (w_out // 2) * (h_out // 2)
    if (w_out, h_out) == (w, h):
        i420[:h] = y
        flat[n_y : n_y + n_c] = np.ascontiguousarray(u).reshape(-1)
        flat[n_y + n_c :] = np.ascontiguousarray(v).reshape(-1)
    else:
        i420[:h_out] = cv2.resize(y, (w_out, h_out), interpolation=cv2.INTER_LINEAR)
        flat[n_y : n_y + n_c] = cv2.resize(u, (w_out // 2, h_out // 2), interpolation=cv2.INTER_LINEAR).reshape(-1)
        flat[n_y + n_c :] = cv2.resize(v, (w_out // 2, h_out // 2), interpolation=cv2.INTER_LINEAR).reshape(-1)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def decode_video(
    path: str | os.PathLike,
    start: float,
    end: float,
    fps: float = 25.0,
    width: Optional[int] = None,
    display_width: Optional[int] = None,
    threads: Optional[int] = None,
    reader: Optional[VideoReader] = None,
) -> VideoFrames:
    """Frames at `fps` for [start, end), indexed by target time: `frames[k]` shows start + k/fps.

    Targets before the stream's first frame take that frame (a video stream that starts a little
    after the audio must not shift every later frame by one); targets past its end are cut off.
    `reader`: an open `VideoReader` of `path` to decode with (it goes on from its last range when
    it can), else the file is opened for this range alone.
    """
    n = max(0, int(math.ceil((end - start) * fps - 1e-6)))
    got: list[Optional[np.ndarray]] = [None] * n
    decoded = reader.frames(start, end, fps, width) if reader is not None else iter_video(path, start, end, fps, width, threads)
    for k, f in decoded:
        if k < n:
            got[k] = f
    last = max((k for k, f in enumerate(got) if f is not None), default=-1)
    frames: list[np.ndarray] = []
    prev = next((f for f in got if f is not None), None)
    for k in range(last + 1):
        prev = got[k] if got[k] is not None else prev
        frames.append(prev)
    scale = 1.0
    if frames:
        dw = display_width or display_size(path)[0]
        scale = frames[0].shape[1] / float(dw) if dw else 1.0
    return VideoFrames(frames=frames, fps=fps, start=start, scale=scale)


def frame_at(path: str | os.PathLike, t: float) -> Optional[np.ndarray]:
    """The BGR frame shown at `t` seconds (None when there is none)."""
    frames = decode_video(path, t, t + 0.04, 25.0).frames
    return frames[0] if frames else None


def display_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as displayed, i.e. after the rotation metadata is applied."""
    with _open(path) as c:
        if not c.streams.video:
            return (0, 0)
        s = c.streams.video[0]
        w, h = s.codec_context.width, s.codec_context.height
        try:
            rot = int(getattr(next(c.decode(s)), "rotation", 0) or 0) % 360
        except (StopIteration, av.error.FFmpegError):
            rot = 0
    return (h, w) if rot in (90, 270) else (w, h)


# ---------------------------------------------------------------- the work files, by sample index (libsndfile)


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int  # samples per channel
    channels: int


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Rate, length and channels from a sound file's header (WAV, FLAC ...; raises on a video)."""
    import soundfile as sf

    info = sf.info(str(path))
    return AudioInfo(sample_rate=int(info.samplerate), frames=int(info.frames), channels=int(info.channels))


def read_samples(path: str | os.PathLike, start: int = 0, stop: Optional[int] = None, dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Samples [start, stop) as [n, channels] `dtype`, and the file's rate: an exact cut that reads
    only its own samples (a `stop` past the end reads to the end)."""
    import soundfile as sf

    return sf.read(str(path), start=start, stop=stop, dtype=dtype, always_2d=True)


def iter_samples(path: str | os.PathLike, block: int, dtype: str = "int16") -> Iterator[np.ndarray]:
    """The whole file as [n, channels] `dtype` blocks of `block` samples (the last may be shorter):
    a file of any length in one block's memory."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        while True:
            data = f.read(block, dtype=dtype, always_2d=True)
            if len(data) == 0:
                return
            yield data


class AudioAppender:
    """Appends mono float32 blocks (clipped to [-1, 1]) to an open 16-bit sound file."""

    def __init__(self, f, path: Path, sample_rate: int):
        self._f = f
        self.path = path
        self.sample_rate = sample_rate
        self.frames = 0

    def write(self, x: np.ndarray) -> None:
        if x.size:
            self._f.write(np.clip(x, -1.0, 1.0))
            self.frames += len(x)


@contextmanager
def audio_writer(path: str | os.PathLike, sample_rate: int, fmt: str) -> Iterator[AudioAppender]:
    """A mono 16-bit `fmt` ("WAV", "FLAC") file written block by block: published atomically
    when the block ends, removed if it raises."""
    import soundfile as sf

    with atomic.replacing(path, ".part") as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, format=fmt, subtype="PCM_16") as f:
            yield AudioAppender(f, Path(path), sample_rate)


def write_scratch_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """[channels, n] float32 as a 32-bit float WAV, written in place: a private scratch file for a
    tool that reads files (the separator), never published, so not written atomically."""
    import soundfile as sf

    sf.write(str(path), audio.T, sample_rate, subtype="FLOAT")


# ---------------------------------------------------------------- what the dataset keeps


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write FLAC (lossless) atomically; `audio` is [n] or [channels, n] float32."""
    import soundfile as sf

    data = audio.T if audio.ndim == 2 else audio
    with atomic.replacing(path, ".part") as tmp:
        sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")


def write_clip(
    path: str | os.PathLike,
    frames: list[np.ndarray],
    fps: float,
    audio: Optional[np.ndarray],
    sample_rate: int,
    crf: int = 23,
    threads: Optional[int] = None,
) -> None:
    """Mux BGR frames (H.264, yuv420p) with mono audio (AAC) into an MP4, atomically. `threads`:
    encoder threads (None = x264's choice; 1 costs a third less CPU on small clips)."""
    with atomic.replacing(path, ".part.mp4") as tmp:
        _mux_clip(tmp, frames, fps, audio, sample_rate, crf, threads)


def _mux_clip(tmp: Path, frames: list[np.ndarray], fps: float, audio: Optional[np.ndarray], sample_rate: int,
              crf: int, threads: Optional[int]) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height = w - w % 2, h - h % 2
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        if threads:
            vs.codec_context.thread_count = int(threads)
        aus = None
        if audio is not None and audio.size:
            aus = out.add_stream("aac", rate=sample_rate, layout="mono")
        for img in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: vs.height, : vs.width]), format="bgr24")
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if aus is not None:
            mono = audio if audio.ndim == 1 else audio.mean(axis=0)
            af = av.AudioFrame.from_ndarray(mono.astype(np.float32)[None, :], format="flt", layout="mono")
            af.sample_rate = sample_rate
            af.pts = 0
            for pkt in aus.encode(af):
                out.mux(pkt)
            for pkt in aus.encode(None):
                out.mux(pkt)


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 90) -> None:
    """Write a BGR image as JPEG, atomically."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"could not encode {Path(path).name}")
    atomic.write_bytes(path, buf.tobytes())


# ---------------------------------------------------------------- what the labelers send


def duration_seconds(path: Optional[str | os.PathLike]) -> float:
    """Seconds of a media file (0.0 when unreadable): sizes token estimates when a request has none."""
    if path is None:
        return 0.0
    try:
        with av.open(str(path)) as c:
            if c.duration:
                return float(c.duration) / 1_000_000
            for s in c.streams:
                if s.duration and s.time_base:
                    return float(s.duration * s.time_base)
    except Exception:  # noqa: BLE001 - an estimate only
        pass
    return 0.0


def wav_bytes(path: str | os.PathLike, sample_rate: int = ANALYSIS_RATE) -> bytes:
    """Any audio file -> 16-bit mono WAV bytes (what OpenAI's `input_audio` accepts). Raises on
    an undecodable file."""
    import io
    import wave

    chunks = []
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        for frame in c.decode(audio=0):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            chunks.append(f.to_ndarray().reshape(-1))
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def jpeg_frames(path: str | os.PathLike, fps: float, max_frames: int, quality: int = 85) -> list[bytes]:
    """JPEG frames of a clip sampled evenly at `fps` (at most `max_frames`, spread over the clip).
    Raises on an undecodable clip; [] when it has no video frames."""
    import cv2

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        native = float(vs.average_rate or 25.0)
        images = [f.to_ndarray(format="bgr24") for f in c.decode(vs)]
    if not images:
        return []
    step = max(1, int(round(native / fps)))
    picked = images[::step]
    if len(picked) > max_frames:
        idx = np.linspace(0, len(images) - 1, max_frames).round().astype(int)
        picked = [images[i] for i in idx]
    out = []
    for img in picked:
        ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if ok:
            out.append(buf.tobytes())
    return out
