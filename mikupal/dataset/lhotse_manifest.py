"""format=lhotse: `recordings.jsonl.gz`, `supervisions.jsonl.gz` and `cuts.jsonl.gz`.

One recording per segment (its FLAC under the run's `audio/`, by absolute path: lhotse manifests
point at audio where it lies), one supervision covering it with text, speaker and language; the
emotions, the primary emotion and the DNSMOS scores go in the supervision's `custom`. With a
speaker split each split gets its own folder (`train/`, `test/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import audio_file, emotion_map, speaker_of


def _supervision(rec, r: dict[str, Any]):
    from lhotse import SupervisionSegment

    custom = {"primary_emotion": r.get("primary_emotion"), "emotions": emotion_map(r),
              "video_id": r["video_id"], "source_start": r["start"], "clip_path": r.get("clip_path") or None}
    custom.update({k: r[k] for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808") if r.get(k) is not None})
    return SupervisionSegment(id=r["segment_id"], recording_id=rec.id, start=0.0, duration=rec.duration, channel=0,
                              text=r.get("text") or "", speaker=speaker_of(r), language=r.get("language") or None,
                              custom=custom)


def write_lhotse(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSet

    written = []
    for name, rows in splits.items():
        d = out if name == "all" else out / name
        d.mkdir(parents=True, exist_ok=True)
        recs = [Recording.from_file(audio_file(root, r), recording_id=r["segment_id"]) for r in rows]
        recordings = RecordingSet.from_recordings(recs)
        supervisions = SupervisionSet.from_segments([_supervision(rec, r) for rec, r in zip(recs, rows)])
        cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
        for obj, fname in ((recordings, "recordings.jsonl.gz"), (supervisions, "supervisions.jsonl.gz"), (cuts, "cuts.jsonl.gz")):
            obj.to_file(d / fname)
            written.append(str((d / fname).relative_to(out)))
    return written
