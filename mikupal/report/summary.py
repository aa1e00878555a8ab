"""report.json: retention, speed and cost, rebuilt from the commit markers (so a resumed run reports
the whole dataset, not just its last leg)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional

from ..engine.commit import FUNNEL_STAGES, OutputDir, VideoSummary
from .sections import build_sections


def build_report(
    out: OutputDir,
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
    if config is not None:
        report["config"] = config
    return report


def write_report(root: Path, report: dict) -> Path:
    path = Path(root) / "report.json"
    tmp = path.with_name("report.json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path
