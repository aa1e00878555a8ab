"""The report's working sections, as plain data for report.json (report.html draws them):

- `per_source`: each input file, seconds in, seconds kept, rejects by reason;
- `reject_examples`: each (stage, reason) with its count, seconds and a few example spans;
- `speakers`: from `speakers/` when present, else counted from the segments' speaker ids;
- `dnsmos`: the OVRL histogram and the mean of each score;
- `emotion_heatmap`: mean intensity of each category, over all segments and per primary emotion;
- `prosody`: per speaker, the spread of pitch, speaking rate and loudness (`prosody.py`).
- `tts`: what a TTS builder asks first: hours kept, people, minutes per person, segment durations.

Each is one function of the output dir's tables, so a section can be added without touching the others.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

from .. import layout
from ..dataset.rows import load_segments, load_speakers, read_parquet_dir, speaker_name, speaker_of
from ..layout import OutputPaths
from ..reasons import REASONS
from .prosody import COLUMNS as PROSODY_COLUMNS, prosody_by_speaker

EXAMPLES_PER_REASON = 3
DNSMOS_BIN = 0.25
DNSMOS_COLUMNS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
#: what the sections read of segments/ (not the words, boxes or embeddings)
SEGMENT_COLUMNS = ("segment_id", "video_id", "source", "speaker_id", "duration", "audio_path", "emotions",
                   "primary_emotion", *DNSMOS_COLUMNS, *PROSODY_COLUMNS)
#: segment durations in the TTS card's histogram: bins of this many seconds
DURATION_BIN = 1.0
#: people listed by name in the TTS card (the rest summed)
TOP_PEOPLE = 12

Rows = list[dict[str, Any]]


def _span_seconds(r: dict[str, Any]) -> float:
    return max(0.0, r["end"] - r["start"]) if r.get("start") is not None and r.get("end") is not None else 0.0


def per_source(summaries: list, rejects: Rows) -> list[dict[str, Any]]:
    """One row per input file: what went in, what was kept, and why the rest was not."""
    by_source: dict[str, Counter] = defaultdict(Counter)
    for r in rejects:
        by_source[r["source"]][r["reason"]] += 1
    return [
        {"source": s.source, "name": os.path.basename(s.source) or s.source, "video_id": s.video_id,
         "seconds_in": round(s.duration, 3), "seconds_kept": round(s.kept_seconds, 3), "kept": s.kept,
         "rejects": dict(by_source.get(s.source, Counter()).most_common())}
        for s in sorted(summaries, key=lambda s: s.source)
    ]


def reject_examples(rejects: Rows) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], Rows] = defaultdict(list)
    for r in rejects:
        groups[(r["stage"], r["reason"])].append(r)
    out = []
    for (stage, reason), rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        spans = sorted(rs, key=lambda r: (r["source"], r.get("start") or 0.0))[:EXAMPLES_PER_REASON]
        out.append({
            "stage": stage, "reason": reason, "meaning": REASONS[reason].meaning if reason in REASONS else "",
            "count": len(rs), "seconds": round(sum(_span_seconds(r) for r in rs), 3),
            "examples": [{"source": os.path.basename(r["source"]), "start": r.get("start"), "end": r.get("end"),
                          "message": r.get("message") or ""} for r in spans],
        })
    return out


def speakers(root: Path, segments: Rows) -> list[dict[str, Any]]:
    """Speakers with their segment count and seconds, and one segment's audio to listen to."""
    sample: dict[str, str] = {}
    for r in segments:
        if r.get("audio_path"):
            sample.setdefault(speaker_of(r), r["audio_path"])
    table = load_speakers(root)
    if table:
        rows = [{"speaker_id": t["speaker_id"], "video_id": t["video_id"], "segments": int(t.get("segments") or 0),
                 "seconds": round(float(t.get("seconds") or 0.0), 3), "face_crop_path": t.get("face_crop_path"),
                 "global_speaker_id": t.get("global_speaker_id")}
                for t in table]
    else:  # outputs without speakers/: one speaker per video, or the segments' own ids
        acc: dict[str, dict[str, Any]] = {}
        for r in segments:
            a = acc.setdefault(speaker_of(r), {"speaker_id": speaker_of(r), "video_id": r["video_id"], "segments": 0,
                                                "seconds": 0.0, "face_crop_path": None})
            a["segments"] += 1
            a["seconds"] = round(a["seconds"] + float(r.get("duration") or 0.0), 3)
        rows = list(acc.values())
    sources = {r["video_id"]: r.get("source") or "" for r in segments}
    for row in rows:
        row["sample_audio"] = sample.get(row["speaker_id"])
        row["name"] = speaker_name(sources.get(row["video_id"], ""), row["speaker_id"])
        row.setdefault("global_speaker_id", None)
    return sorted(rows, key=lambda r: (-r["seconds"], r["speaker_id"]))


def tts(speaker_rows: Rows, segments: Rows) -> dict[str, Any]:
    """Hours kept, people (global speaker ids where the output has them, else per-video speakers,
    else the video), minutes per person (the top `TOP_PEOPLE` by name, the rest summed), and a
    histogram of segment durations in `DURATION_BIN` s bins."""
    known = {s["speaker_id"]: s for s in speaker_rows}
    seconds: dict[str, float] = defaultdict(float)
    names: dict[str, str] = {}
    for r in segments:
        sid = speaker_of(r)
        row = known.get(sid, {})
        person = row.get("global_speaker_id") or sid
        seconds[person] += float(r.get("duration") or 0.0)
        name = row.get("name") or speaker_name(r.get("source") or "", sid)
        names.setdefault(person, f"{person} ({name})" if row.get("global_speaker_id") else name)
    ranked = sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0]))
    people = [{"person": p, "name": names[p], "minutes": round(v / 60.0, 3)} for p, v in ranked[:TOP_PEOPLE]]
    rest = ranked[TOP_PEOPLE:]
    durations = [float(r.get("duration") or 0.0) for r in segments]
    n_bins = int(math.ceil(max(durations, default=0.0) / DURATION_BIN)) or 1
    counts = [0] * n_bins
    for d in durations:
        counts[min(n_bins - 1, int(d // DURATION_BIN))] += 1
    return {
        "kept_hours": round(sum(durations) / 3600.0, 4), "segments": len(durations), "people": len(seconds),
        "minutes_per_person": people,
        "others": {"people": len(rest), "minutes": round(sum(v for _, v in rest) / 60.0, 3)} if rest else None,
        "median_seconds": round(sorted(durations)[len(durations) // 2], 2) if durations else None,
        "duration_bins": [{"low": i * DURATION_BIN, "high": (i + 1) * DURATION_BIN, "count": c} for i, c in enumerate(counts)],
    }


def dnsmos(segments: Rows) -> Optional[dict[str, Any]]:
    """OVRL histogram in 0.25-wide bins over [1, 5], and each score's mean; None without scores."""
    ovrl = [float(r["dnsmos_ovrl"]) for r in segments if r.get("dnsmos_ovrl") is not None]
    if not ovrl:
        return None
    n_bins = int(round(4 / DNSMOS_BIN))
    counts = [0] * n_bins
    for v in ovrl:
        counts[min(n_bins - 1, max(0, int(math.floor((v - 1.0) / DNSMOS_BIN))))] += 1
    means = {}
    for col in DNSMOS_COLUMNS:
        vals = [float(r[col]) for r in segments if r.get(col) is not None]
        means[col] = round(sum(vals) / len(vals), 3) if vals else None
    return {"scored": len(ovrl), "thresholds": thresholds(segments), "bins": [{"low": round(1.0 + i * DNSMOS_BIN, 2), "high": round(1.0 + (i + 1) * DNSMOS_BIN, 2),
                                           "count": c} for i, c in enumerate(counts)], "means": means}


#: the export thresholds (`mikupal export min_dnsmos=...`) the report prices in kept seconds
OVRL_THRESHOLDS = (None, 2.0, 2.5, 3.0, 3.5)


def thresholds(segments: Rows) -> list[dict[str, Any]]:
    """What each export threshold on OVRL would leave (segments and seconds): the run keeps
    everything above the floor (`quality.min_ovrl`), and strict selection happens at export."""
    out = []
    for t in OVRL_THRESHOLDS:
        rs = [r for r in segments if t is None or (r.get("dnsmos_ovrl") is not None and float(r["dnsmos_ovrl"]) >= t)]
        out.append({"min_dnsmos": t, "segments": len(rs), "seconds": round(sum(float(r["duration"] or 0.0) for r in rs), 3)})
    return out


def emotion_heatmap(segments: Rows) -> Optional[dict[str, Any]]:
    """Mean intensity per category (columns, in taxonomy order) for all segments and per primary
    emotion (rows, most frequent first); None when nothing is labeled."""
    labeled = [r for r in segments if r.get("emotions")]
    if not labeled:
        return None
    categories = [e["name"] for e in labeled[0]["emotions"]]

    def means(rs: Rows) -> list[float]:
        sums = Counter()
        for r in rs:
            for e in r["emotions"]:
                sums[e["name"]] += float(e["intensity"])
        return [round(sums[c] / len(rs), 4) for c in categories]

    by_primary: dict[str, Rows] = defaultdict(list)
    for r in labeled:
        by_primary[r.get("primary_emotion") or "unknown"].append(r)
    rows = [{"label": "all segments", "count": len(labeled), "means": means(labeled)}]
    rows += [{"label": p, "count": len(rs), "means": means(rs)}
             for p, rs in sorted(by_primary.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return {"categories": categories, "rows": rows}


def build_sections(root: Path, summaries: list) -> dict[str, Any]:
    paths = OutputPaths(root)
    segments = load_segments(root, SEGMENT_COLUMNS) if paths.dir(layout.SEGMENTS).is_dir() else []
    rejects = read_parquet_dir(paths.dir(layout.REJECTS))
    speaker_rows = speakers(root, segments)
    return {
        "per_source": per_source(summaries, rejects),
        "reject_examples": reject_examples(rejects),
        "speakers": speaker_rows,
        "tts": tts(speaker_rows, segments),
        "dnsmos": dnsmos(segments),
        "emotion_heatmap": emotion_heatmap(segments),
        "prosody": prosody_by_speaker(segments),
    }
