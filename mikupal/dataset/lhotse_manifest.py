"""format=lhotse: `recordings.jsonl.gz`, `supervisions.jsonl.gz` and `cuts.jsonl.gz`.

One recording per segment (its FLAC under the run's `audio/`, by absolute path: lhotse manifests
point at audio where it lies), one supervision covering it with text, speaker (the global speaker
id where there is one) and language; the rest of `rows.export_fields` (the per-video speaker, the
source file and span, words in seconds of the recording, the measured columns, the emotions) goes
in the supervision's `custom`, and with `clips=true` the clip's absolute path. With a speaker split
each split gets its own folder (`train/`, `test/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import audio_file, clip_file, emotion_map, export_fields, person_of


def _supervision(rec, r: dict[str, Any], root: Path, clips: bool = False):
    from lhotse import SupervisionSegment

    fields = export_fields(r)
    custom = {k: v for k, v in fields.items() if v is not None and k not in ("segment_id", "text", "language")}
    custom["emotions"] = emotion_map(r)
    clip = clip_file(root, r) if clips else None
    if clip is not None:
        custom["clip_path"] = str(clip)
    return SupervisionSegment(id=r["segment_id"], recording_id=rec.id, start=0.0, duration=rec.duration, channel=0,
                              text=r.get("text") or "", speaker=person_of(r), language=r.get("language") or None,
                              custom=custom)


def write_lhotse(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSet

    written = []
    for name, rows in splits.items():
        d = out if name == "all" else out / name
        d.mkdir(parents=True, exist_ok=True)
        recs = [Recording.from_file(audio_file(root, r), recording_id=r["segment_id"]) for r in rows]
        recordings = RecordingSet.from_recordings(recs)
        clips = bool(getattr(args, "clips", False))
        supervisions = SupervisionSet.from_segments([_supervision(rec, r, root, clips) for rec, r in zip(recs, rows)])
        cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
        for obj, fname in ((recordings, "recordings.jsonl.gz"), (supervisions, "supervisions.jsonl.gz"), (cuts, "cuts.jsonl.gz")):
            obj.to_file(d / fname)
            written.append(str((d / fname).relative_to(out)))
    return written
