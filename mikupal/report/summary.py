"""report.json: retention, speed and cost, rebuilt from the commit markers (so a resumed run reports
the whole dataset, not just its last leg)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional

from .. import atomic
from ..committed import FUNNEL_STAGES, CommittedOutput, VideoSummary
from ..layout import OutputPaths
from .sections import build_sections

#: the share of VAD speech seconds that kept segments and reject spans must explain
ACCOUNTING_TOLERANCE = 0.02


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals (overlaps counted once)."""
    total, cur_s, cur_e = 0.0, None, None
    for a, b in sorted(intervals):
        if cur_e is None or a > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = a, b
        else:
            cur_e = max(cur_e, b)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def accounting(out: CommittedOutput, summaries: list[VideoSummary]) -> dict:
    """Where every second of VAD speech went: into a kept segment or a reject span (any stage after
    VAD, with its reason). VAD's own spans (bursts too short to be speech) lie outside its speech
    seconds and are listed apart. `unaccounted_seconds` should be ~0: the funnel reconciles."""
    spans: dict[str, list[tuple[float, float]]] = {}
    kept: dict[str, list[tuple[float, float]]] = {}
    seg = out.read_segments().select(["video_id", "start", "end"]).to_pylist()
    for r in seg:
        kept.setdefault(r["video_id"], []).append((r["start"], r["end"]))
    by_reason: Counter = Counter()
    vad_dropped = 0.0
    for r in out.read_rejects().select(["video_id", "stage", "reason", "start", "end"]).to_pylist():
        if r["start"] is None or r["end"] is None or r["end"] <= r["start"]:
            continue
        if r["stage"] == "vad":
            vad_dropped += r["end"] - r["start"]
            continue
        spans.setdefault(r["video_id"], []).append((r["start"], r["end"]))
        by_reason[r["reason"]] += r["end"] - r["start"]
    vad = sum(f.seconds for s in summaries for f in s.funnel if f.stage == "vad")
    kept_s = sum(_union_seconds(v) for v in kept.values())
    accounted = sum(_union_seconds(kept.get(v, []) + spans.get(v, [])) for v in set(kept) | set(spans))
    return {
        "vad_seconds": round(vad, 3),
        "kept_seconds": round(kept_s, 3),
        "rejected_seconds": round(accounted - kept_s, 3),
        "accounted_seconds": round(accounted, 3),
        "unaccounted_seconds": round(max(0.0, vad - accounted), 3),
        "accounted_fraction": round(accounted / vad, 4) if vad else 1.0,
        "reconciles": (abs(vad - accounted) <= ACCOUNTING_TOLERANCE * vad) if vad else True,
        "rejected_seconds_by_reason": {k: round(v, 3) for k, v in by_reason.most_common()},
        "vad_dropped_seconds": round(vad_dropped, 3),
    }


def build_report(
    out: CommittedOutput,
    wall_seconds: float,
    processed_keys: set[str],
    config: Optional[dict] = None,
    peak_rss_mb: Optional[float] = None,
) -> dict:
    summaries = out.summaries()
    input_seconds = sum(s.duration for s in summaries)
    kept_seconds = sum(s.kept_seconds for s in summaries)
    processed_seconds = sum(s.duration for s in summaries if s.key in processed_keys)
    costs = [s.cost_usd for s in summaries]
    cost = None if any(c is None for c in costs) else sum(costs)  # None: a labeler model without a price
    funnel = []
    for stage in FUNNEL_STAGES:
        count = seconds = 0.0
        for s in summaries:
            for f in s.funnel:
                if f.stage == stage:
                    count += f.count
                    seconds += f.seconds
        funnel.append({"stage": stage, "count": int(count), "seconds": round(seconds, 3)})
    stages: dict[str, float] = {}
    for s in summaries:
        if s.key in processed_keys:
            for t in s.times:
                stages[t.stage] = stages.get(t.stage, 0.0) + t.seconds
    emotions = Counter(e for s in summaries for e in s.primary_emotions)
    rejects = Counter()
    kept_hours = kept_seconds / 3600.0
    report = {
        "videos": len(summaries),
        "videos_processed_this_run": len(processed_keys),
        "segments": sum(s.kept for s in summaries),
        "rejects": sum(s.rejects for s in summaries),
        "input_seconds": round(input_seconds, 3),
        "kept_seconds": round(kept_seconds, 3),
        "retention": round(kept_seconds / input_seconds, 6) if input_seconds else 0.0,
        "processed_seconds": round(processed_seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        # media seconds processed by this invocation per wall second of it
        "speed_ratio": round(processed_seconds / wall_seconds, 4) if wall_seconds > 0 else 0.0,
        "cost_usd": None if cost is None else round(cost, 6),
        "cost_per_kept_hour_usd": round(cost / kept_hours, 6) if kept_hours and cost is not None else None,
        "input_tokens": sum(s.input_tokens for s in summaries),
        "output_tokens": sum(s.output_tokens for s in summaries),
        "funnel": funnel,
        "stages": {k: round(v, 3) for k, v in sorted(stages.items())},
        "emotion_distribution": dict(emotions.most_common()),
        "peak_rss_mb": peak_rss_mb,
    }
    rej = out.read_rejects()
    if rej.num_rows:
        rejects.update(zip(rej.column("stage").to_pylist(), rej.column("reason").to_pylist()))
        report["reject_reasons"] = [{"stage": s, "reason": r, "count": n} for (s, r), n in rejects.most_common()]
    else:
        report["reject_reasons"] = []
    report.update(build_sections(out.root, summaries))
    report["accounting"] = accounting(out, summaries)
    skipped = out.skipped()
    report["skipped_files_count"] = len(skipped)
    report["skipped_files"] = skipped
    if config is not None:
        report["config"] = config
    return report


def write_report(root: Path, report: dict) -> Path:
    path = OutputPaths(root).report_json
    atomic.write_text(path, json.dumps(report, indent=2, default=str))
    return path


#: figures only a run measures: kept from the report a rebuild replaces
RUN_FIGURES = ("videos_processed_this_run", "processed_seconds", "wall_seconds", "speed_ratio", "stages", "config",
               "peak_rss_mb")


def rebuild_report(out: CommittedOutput) -> dict:
    """report.json and report.html again from the committed files (`mikupal report`)."""
    from .html import write_html

    try:
        old = json.loads(out.paths.report_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    report = build_report(out, float(old.get("wall_seconds") or 0.0), set())
    report.update({k: old[k] for k in RUN_FIGURES if k in old})
    write_report(out.root, report)
    write_html(out.root, report, out.read_segments())
    return report
