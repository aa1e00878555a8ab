"""A small finished output dir, written the way the writer writes one, for the export and report tests.

Three videos: `vida` with two speakers (`vida_S1`, `vida_S2`), `vidb` with one, `vidc` from before
speaker identity (no `speaker_id`: the video stands for the speaker). `global_speakers.parquet`
links `vida_S2` and `vidb_S1` as one person (`G2`). Each segment has a real FLAC (a voiced harmonic
tone, 44.1 kHz), a real MP4 clip, words in source seconds, 26 emotion intensities, DNSMOS scores
an SNR, and the prosody measured on its FLAC with its bins and caption (one written as the labeler's); some rejects; a `speakers/` table for the videos that have speaker ids; commit markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mikupal.committed import FunnelCounts, VideoSummary
from mikupal.media import write_audio
from mikupal.audio.prosody import measure
from mikupal.describe import describe_columns
from mikupal.records import DatasetSegment, EmotionIntensity, GlobalSpeaker, Reject, Word, segment_id
from mikupal.taxonomy import load_taxonomy
from tests.fakes import make_clip

RATE = 44100
#: per-video speaker -> the person across videos
GLOBAL = {"vida_S1": "G1", "vida_S2": "G2", "vidb_S1": "G2"}
VIDEOS = {  # video -> [(speaker or None, start, end, ovrl, language)]
    "vida": [("vida_S1", 1.0, 3.5, 3.6, "en"), ("vida_S2", 4.0, 6.0, 3.1, "en"), ("vida_S1", 7.0, 9.2, 2.7, "en")],
    "vidb": [("vidb_S1", 0.5, 3.0, 3.4, "en"), ("vidb_S1", 3.5, 5.5, 3.9, "fr")],
    "vidc": [(None, 2.0, 4.5, 3.2, "en")],
}


def _tone(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) / 2.3).astype(np.float32)


def _words(i: int, vid: str, start: float, end: float) -> list[dict[str, Any]]:
    """The text's words spread over the segment, each 80% of its slot (the rest a pause)."""
    tokens = f"utterance {i} of {vid} with a pipe".split()
    slot = (end - start) / len(tokens)
    return [Word(word=" " + w, start=round(start + k * slot, 3), end=round(start + (k + 0.8) * slot, 3),
                 probability=0.9).model_dump() for k, w in enumerate(tokens)]


def _emotions(rng: np.random.Generator, names: list[str]) -> list[EmotionIntensity]:
    raw = rng.random(len(names)) ** 3
    return [EmotionIntensity(name=n, intensity=round(float(v), 3)) for n, v in zip(names, raw)]


def _segment_row(root: Path, vid: str, spec: tuple, i: int, names: list[str], rng) -> dict[str, Any]:
    speaker, start, end, ovrl, lang = spec
    sid = segment_id(vid, start)
    audio, clip = f"audio/{vid}/{sid}.flac", f"clips/{vid}/{sid}.mp4"
    (root / audio).parent.mkdir(parents=True, exist_ok=True)
    tone = _tone(end - start, 140 + 30 * i)
    write_audio(root / audio, tone, RATE)
    (root / clip).parent.mkdir(parents=True, exist_ok=True)
    make_clip(root / clip, seconds=1.0, seed=i)
    emotions = _emotions(rng, names)
    row = DatasetSegment(
        segment_id=sid, video_id=vid, source=f"/videos/{vid}.mp4", start=start, end=end, duration=end - start,
        text=f"utterance {i} of {vid} | with a pipe", language=lang, avg_logprob=round(-0.2 - 0.15 * i, 3),
        words=_words(i, vid, start, end), audio_path=audio, clip_path=clip, snr_db=20.0 + i,
        sample_rate=RATE, speaker_boxes=[], asd_score=1.5, dnsmos_sig=ovrl + 0.4, dnsmos_bak=ovrl + 0.6,
        dnsmos_ovrl=ovrl, dnsmos_p808=ovrl + 0.3, emotions=emotions,
        primary_emotion=max(emotions, key=lambda e: e.intensity).name,
    ).model_dump()
    row.update(measure(tone, RATE, [Word(**w) for w in row["words"]], start, lang).model_dump())
    row["perceived_gender"] = ("female", "male", None)[i % 3]
    if i == 0:  # as the labeler (prompt v2) answered for it
        row.update(caption="A woman laughs warmly while she speaks.", caption_source="labeler", perceived_age="30s",
                   accent="unsure", nonverbal_events=[{"event": "laughter", "start": 0.5, "end": 1.1}])
    row.update(describe_columns(row))
    if speaker is not None:
        row["speaker_id"] = speaker
        row["speaker_embedding"] = rng.standard_normal(8).astype(np.float32).tolist()
    else:  # as an output written before speaker identity existed
        row.pop("speaker_id")
        row.pop("speaker_embedding")
    return row


def _rejects(vid: str) -> list[Reject]:
    return [
        Reject.span(vid, f"/videos/{vid}.mp4", "vision", "no_active_speaker", "no face speaks", 10.0, 12.5),
        Reject.span(vid, f"/videos/{vid}.mp4", "quality", "low_quality", "dnsmos_ovrl 2.41 < 3.00", 13.0, 15.0),
    ]


def _face_crop(root: Path, speaker: str) -> str:
    import cv2

    rel = f"speakers/faces/{speaker}.jpg"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    img = np.full((64, 64, 3), 200, np.uint8)
    cv2.circle(img, (32, 32), 24, (90, 140, 200), -1)
    cv2.imwrite(str(root / rel), img)
    return rel


def _speakers_table(root: Path, vid: str, rows: list[dict[str, Any]]) -> pa.Table:
    out = []
    for n, spk in enumerate(sorted({r["speaker_id"] for r in rows})):
        mine = [r for r in rows if r["speaker_id"] == spk]
        out.append({"speaker_id": spk, "video_id": vid, "segments": len(mine), "seconds": sum(r["duration"] for r in mine),
                    "embedding": mine[0]["speaker_embedding"],
                    "face_crop_path": _face_crop(root, spk) if n == 0 else None})  # one speaker without a crop
    return pa.Table.from_pylist(out)


def make_output(root: Path) -> Path:
    """Write the output dir under `root`; returns it."""
    names = load_taxonomy("cowen_keltner_26").names()
    rng = np.random.default_rng(7)
    i = 0
    for vid, specs in VIDEOS.items():
        rows = []
        for spec in specs:
            rows.append(_segment_row(root, vid, spec, i, names, rng))
            i += 1
        (root / "segments").mkdir(parents=True, exist_ok=True)
        schema = DatasetSegment.arrow_schema()
        if "speaker_id" not in rows[0]:  # an output written before speaker identity existed
            schema = pa.schema([f for f in schema if f.name not in ("speaker_id", "speaker_embedding")])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), root / "segments" / f"{vid}.parquet")
        rejects = _rejects(vid)
        (root / "rejects").mkdir(parents=True, exist_ok=True)
        pq.write_table(Reject.to_table(rejects), root / "rejects" / f"{vid}.parquet")
        if "speaker_id" in rows[0]:
            (root / "speakers").mkdir(parents=True, exist_ok=True)
            pq.write_table(_speakers_table(root, vid, rows), root / "speakers" / f"{vid}.parquet")
        kept = sum(r["duration"] for r in rows)
        summary = VideoSummary(key=vid, video_id=vid, source=f"/videos/{vid}.mp4", duration=30.0, kept=len(rows),
                               kept_seconds=kept, rejects=len(rejects),
                               funnel=[FunnelCounts(stage="input", count=1, seconds=30.0),
                                       FunnelCounts(stage="label", count=len(rows), seconds=kept)],
                               primary_emotions=[r["primary_emotion"] for r in rows])
        (root / ".state" / "done").mkdir(parents=True, exist_ok=True)
        (root / ".state" / "done" / f"{vid}.json").write_text(summary.model_dump_json(), encoding="utf-8")
    links = [GlobalSpeaker(speaker_id=s, video_id=s.split("_")[0], global_speaker_id=g) for s, g in GLOBAL.items()]
    pq.write_table(GlobalSpeaker.to_table(links), root / "global_speakers.parquet")
    return root


def all_rows(root: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((root / "segments").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
