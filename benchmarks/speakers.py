"""Speaker purity, attribution and identity on constructed conversations with exact ground truth.

The set (tests/conversations.py `standard_set`): two- and three-person side-by-side talks with
tight turn gaps, a listener whose lips move out of sync, both talking at once, an edited film-style
scene with shot cuts, a music bed, and a single speaker. One real `mikupal run` over all of it, then
every kept segment is scored against the truth:

* purity: share of a segment's voiced time that is its main person's (a segment is pure at >= 0.95);
* attribution: the speaker box sits on the main person's panel (side-by-side layouts);
* speaker ids: purity and completeness of `speaker_id` against the true person, duration-weighted;
* retention: kept seconds / voiced seconds of the truth;
* cost: CPU seconds per media second of the whole run (start-up included), and the run with the
  speaker checks off (`speaker=none`) for the extra cost.

    python -m benchmarks.speakers             # writes benchmarks/results/speakers.json
    python -m benchmarks.speakers --baseline  # also runs with speaker=none for the extra cost
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from .inputs import CACHE, ROOT
from .pipeline import RESULTS, mikupal_run

sys.path.insert(0, str(ROOT / "tests"))
from conversations import Truth, standard_set  # noqa: E402


def _rows(out: Path, sub: str) -> list[dict]:
    files = sorted((out / sub).glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _cluster_scores(pairs: list[tuple[str, int, float]]) -> tuple[float, float]:
    """(purity, completeness) of predicted ids against true persons, weighted by seconds."""
    total = sum(w for _, _, w in pairs) or 1.0
    by_pred: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    by_true: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for pred, true, w in pairs:
        by_pred[pred][true] += w
        by_true[true][pred] += w
    purity = sum(max(v.values()) for v in by_pred.values()) / total
    completeness = sum(max(v.values()) for v in by_true.values()) / total
    return purity, completeness


def score(out: Path, truths: dict[str, Truth]) -> dict:
    segs = _rows(out, "segments")
    rejects = _rows(out, "rejects")
    per_case: dict[str, dict] = {}
    all_pairs: list[tuple[str, int, float]] = []
    pure = attributed = attributable = 0
    kept_s = voiced_s = 0.0
    for name, truth in truths.items():
        rows = [r for r in segs if Path(r["source"]).stem == name]
        pairs = []
        case_pure = 0
        for r in rows:
            p = truth.purity(r["start"], r["end"])
            case_pure += int(p >= 0.95)
            main = truth.main_person(r["start"], r["end"])
            if truth.layout == "side" and r["speaker_boxes"]:
                boxes = r["speaker_boxes"]
                mid = boxes[len(boxes) // 2]
                attributable += 1
                attributed += int(truth.person_at(mid) == main)
            if main is not None and r.get("speaker_id"):
                pairs.append((r["speaker_id"], main, r["end"] - r["start"]))
        pure += case_pure
        kept = sum(r["end"] - r["start"] for r in rows)
        kept_s += kept
        voiced_s += truth.voiced_seconds()
        ids = {r.get("speaker_id") for r in rows}
        sp, sc = _cluster_scores(pairs) if pairs else (0.0, 0.0)
        largest = max((sum(1 for r in rows if r.get("speaker_id") == i) for i in ids), default=0)
        per_case[name] = {
            "kept": len(rows),
            "pure": case_pure,
            "kept_seconds": round(kept, 2),
            "voiced_seconds": round(truth.voiced_seconds(), 2),
            "speaker_ids": len(ids - {None}),
            "persons": len(truth.persons),
            "id_purity": round(sp, 3),
            "id_completeness": round(sc, 3),
            "largest_id_share": round(largest / len(rows), 3) if rows else 0.0,
            "rejects": sorted({r["reason"] for r in rejects if Path(r["source"]).stem == name}),
        }
        all_pairs += pairs
    # within a video: a duration-weighted mean over the videos; across videos: global ids against
    # the person (the same clip person appears in several videos)
    weights = {n: c["kept_seconds"] for n, c in per_case.items() if c["kept"]}
    total_w = sum(weights.values()) or 1.0
    id_p = sum(per_case[n]["id_purity"] * w for n, w in weights.items()) / total_w
    id_c = sum(per_case[n]["id_completeness"] * w for n, w in weights.items()) / total_w
    glob = out / "global_speakers.parquet"
    g = {r["speaker_id"]: r["global_speaker_id"] for r in pq.read_table(glob).to_pylist()} if glob.is_file() else {}
    gp, gc = _cluster_scores([(g.get(sid, sid), person, w) for sid, person, w in all_pairs]) if all_pairs else (0.0, 0.0)
    return {
        "kept_segments": len(segs),
        "pure_share": round(pure / len(segs), 3) if segs else 0.0,
        "attribution_accuracy": round(attributed / attributable, 3) if attributable else 0.0,
        "retention_of_voiced": round(kept_s / voiced_s, 3) if voiced_s else 0.0,
        "id_purity": round(id_p, 3),
        "id_completeness": round(id_c, 3),
        "global_id_purity": round(gp, 3),
        "global_id_completeness": round(gc, 3),
        "cases": per_case,
    }


def _measure(media: Path, truths: dict[str, Truth], media_s: float, name: str, *overrides: str) -> dict:
    out = CACHE / f"speakers_out_{name}"
    run = mikupal_run(media, out, *overrides)
    return {"overrides": list(overrides), "run": {k: run[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")},
            "cpu_s_per_media_s": round(run["cpu_s"] / media_s, 3), "command": run["command"], **score(out, truths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", action="store_true", help="also run with speaker=none (the extra cost)")
    a = ap.parse_args()
    media = CACHE / "conversations"
    truths = standard_set(media)
    media_s = sum(t.duration for t in truths.values())
    # the speaker checks alone (DNSMOS off: its low_quality rejects would hide what they keep), then
    # the default pipeline as users run it
    result = {"media_seconds": round(media_s, 2),
              "speaker_checks": _measure(media, truths, media_s, "speaker", "quality.kind=none"),
              "default": _measure(media, truths, media_s, "default")}
    if a.baseline:
        base = _measure(media, truths, media_s, "none", "quality.kind=none", "speaker=none")
        result["no_speaker_checks"] = base
        result["extra_cpu_s_per_media_s"] = round(result["speaker_checks"]["cpu_s_per_media_s"] - base["cpu_s_per_media_s"], 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speakers.json").write_text(json.dumps(result, indent=1, default=float))
    for name in ("speaker_checks", "default", "no_speaker_checks"):
        if name in result:
            print(name, json.dumps({k: v for k, v in result[name].items() if k not in ("cases", "command")}))
    for name, c in result["speaker_checks"]["cases"].items():
        print(" ", name, c)


if __name__ == "__main__":
    main()
