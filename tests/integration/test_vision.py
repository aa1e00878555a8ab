"""The vision stage on the real talking-face clips and on composites made from them with ffmpeg.

* each vr_face clip: one track, chosen as the speaker, ASD positive on >= 70% of its (scored) frames
  where the voice is audible (the clips pause: vr_face1 is silent for 2.5 of its 6.1 s, and nobody
  is seen speaking in a pause), clip + dataset audio written;
* the same video with silent audio: no speaker (no_active_speaker);
* a talking clip beside a held frame of another (hstack), with the talking clip's audio: the speaker
  box lies on the talking side on >= 90% of frames, both ways round;
* a video with no face (testsrc): no_face; a clip scaled down to 64x64: face_too_small.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CLIPS = [f"vr_face{i}.mp4" for i in range(1, 6)]  # from the `media` fixture (../shared, or its stand-in)

pytestmark = [
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH"),
]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory, media) -> Path:
    d = tmp_path_factory.mktemp("vision_media")
    c1, c2 = str(media / CLIPS[0]), str(media / CLIPS[1])
    ffmpeg("-i", c2, "-frames:v", "1", str(d / "frozen2.png"))
    dur = "6.1"  # vr_face1: 30 fps; the held frame must come at the same rate (hstack of two rates never ends)
    for name, order in (("left_talks", "[l][r]"), ("right_talks", "[r][l]")):
        graph = f"[0:v]scale=-2:700,setsar=1[l];[1:v]scale=-2:700,setsar=1[r];{order}hstack=inputs=2:shortest=1[v]"
        ffmpeg("-i", c1, "-loop", "1", "-framerate", "30", "-t", dur, "-i", str(d / "frozen2.png"),
               "-filter_complex", graph, "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast",
               "-crf", "18", "-c:a", "aac", "-t", dur, str(d / f"{name}.mp4"))
    ffmpeg("-i", c2, "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-map", "0:v", "-map", "1:a",
           "-c:v", "copy", "-c:a", "aac", "-shortest", str(d / "silent.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-i", c1, "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-t", "4", str(d / "noface.mp4"))
    ffmpeg("-i", c1, "-vf", "scale=64:64", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
           str(d / "tiny.mp4"))
    return d


@pytest.fixture(scope="module")
def stage(tmp_path_factory, models_dir):
    import torch

    from mikupal.config import compose
    from mikupal.stages.vision import VisionStage

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vision_run")
    models = root / "models"
    models.mkdir()
    for k in ("yunet", "light-asd"):
        if not (models_dir / k).exists():
            pytest.skip(f"{k} weights absent")
        os.symlink((models_dir / k).resolve(), models / k)
    voice = (models_dir / "ge2e").exists()  # the stage checks short turns by voice when it has the encoder
    if voice:
        os.symlink((models_dir / "ge2e").resolve(), models / "ge2e")
    cfg = compose([f"models_dir={models}", "profile=cpu"] + ([] if voice else ["speaker=none"]))
    return VisionStage(cfg, root / "out")


def make_item(path: Path, work: Path):
    import soundfile as sf

    from mikupal import media
    from mikupal.records import SpeechSegment, segment_id
    from mikupal.records import Payload, WorkItem

    v = media.probe(path)
    d = work / f"{path.stem}_{v.video_id}"
    d.mkdir(parents=True, exist_ok=True)
    sf.write(d / "analysis.wav", media.decode_audio(path), 16000)
    sf.write(d / "vocals.flac", media.decode_audio(path, sample_rate=44100, mono=False).T, 44100)
    seg = SpeechSegment(segment_id=segment_id(v.video_id, 0.0), video_id=v.video_id, source=str(path), start=0.0,
                        end=v.duration, text="test")
    return WorkItem(source=str(path), video_id=v.video_id, status="segment", data=Payload(video=v, segment=seg, analysis_path=str(d / "analysis.wav"), vocals_path=str(d / "vocals.flac")))


def run(stage, path: Path, tmp_path: Path):
    item = make_item(path, tmp_path)
    out = stage.run_item(item)
    assert len(out) == 1
    return out[0]


def reason(item) -> str | None:
    return item.rejects[-1].reason if item.rejects else None


@pytest.mark.parametrize("name", CLIPS, ids=[Path(c).stem for c in CLIPS])
def test_real_clip_has_one_speaking_track(stage, media, name, tmp_path):
    clip = media / name
    import soundfile as sf

    from mikupal import media
    from mikupal.vision.attribution import voiced_frames

    item = run(stage, clip, tmp_path)
    assert item.status == "segment", item.rejects
    assert len(stage.last_tracks) == 1
    tr = stage.last_tracks[0]
    assert item.data.speaker_track == tr.track_id
    n = int(np.ceil(item.data.segment.end * 25 - 1e-6))
    assert abs(len(item.data.speaker_boxes) - n) <= 1
    boxes = np.asarray(item.data.speaker_boxes)
    w, h = item.data.video.width, item.data.video.height
    assert (boxes[:, 2] - boxes[:, 0]).min() > 100  # source pixels: the faces fill a third of the frame
    assert boxes[:, 0].min() > -10 and boxes[:, 2].max() < w + 10 and boxes[:, 3].max() < h + 10

    scores = np.asarray(tr.asd_scores)
    voiced = voiced_frames(media.decode_audio(item.data.analysis_path), len(item.data.speaker_boxes))[np.asarray(tr.frames)]
    scored = np.isfinite(scores)
    ac = stage.cfg.asd
    first = int(round(25 * (ac.first_pass_seconds or ac.max_scored_seconds)))
    assert scored.sum() >= first  # the first pass at least (all 3 s when it left the speaker in doubt)
    on = scored & voiced
    assert on.sum() >= min(40, first // 2)
    assert (scores[on] > 0).mean() >= 0.7
    assert item.data.speaking_fraction >= stage.cfg.asd.min_speaking_fraction and item.data.asd_score is not None

    # what the labeler sees and what the dataset keeps
    out = stage.output_dir
    assert item.data.clip_path == f"clips/{item.video_id}/{item.data.segment.segment_id}.mp4"
    assert item.data.audio_path == f"audio/{item.video_id}/{item.data.segment.segment_id}.flac"
    info = sf.info(str(out / item.data.audio_path))
    assert info.samplerate == stage.cfg.dataset.sample_rate
    assert abs(info.duration - item.data.segment.end) < 0.05
    probe = media.probe(out / item.data.clip_path)
    size = stage.cfg.dataset.clip_size
    assert probe.has_audio and probe.has_video and (probe.width, probe.height) == (size, size)
    assert abs(probe.duration - item.data.segment.end) < 0.2


def test_silent_audio_has_no_speaker(stage, media_dir, tmp_path):
    item = run(stage, media_dir / "silent.mp4", tmp_path)
    assert item.status == "dropped" and reason(item) == "no_active_speaker", item.rejects
    assert item.rejects[-1].stage == "vision"
    assert item.data.clip_path is None and item.data.speaker_track is None
    assert len(stage.last_tracks) == 1  # the face was there, and scored
    assert np.isfinite(stage.last_tracks[0].asd_scores).sum() > 0


@pytest.mark.parametrize("name,left", [("left_talks", True), ("right_talks", False)])
def test_side_by_side_speaker_follows_the_talking_side(stage, media_dir, name, left, tmp_path, monkeypatch):
    if not left:  # also exercise the debug render once
        monkeypatch.setattr(stage.cfg.dataset, "debug_render", True)
    item = run(stage, media_dir / f"{name}.mp4", tmp_path)
    assert item.status == "segment", item.rejects
    assert len(stage.last_tracks) == 2
    xc = np.array([(b[0] + b[2]) / 2 for b in item.data.speaker_boxes])
    half = item.data.video.width / 2
    on_side = (xc < half) if left else (xc >= half)
    assert on_side.mean() >= 0.9
    frozen = next(t for t in stage.last_tracks if t.track_id != item.data.speaker_track)
    fs = np.asarray(frozen.asd_scores)
    assert (fs[np.isfinite(fs)] > 0).mean() < 0.1  # the held frame is never seen speaking
    if not left:
        debug = stage.output_dir / f"debug/{item.video_id}/{item.data.segment.segment_id}.mp4"
        assert debug.is_file() and debug.stat().st_size > 1000


def test_no_face(stage, media_dir, tmp_path):
    item = run(stage, media_dir / "noface.mp4", tmp_path)
    assert item.status == "dropped" and reason(item) == "no_face", item.rejects
    assert stage.last_tracks == []


def test_face_too_small(stage, media_dir, tmp_path):
    item = run(stage, media_dir / "tiny.mp4", tmp_path)
    assert item.status == "dropped" and reason(item) == "face_too_small", item.rejects
    assert "min_face_px" in item.rejects[-1].message
