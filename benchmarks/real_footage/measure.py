"""`run`: one real `mikupal run` over the fetched footage, then every kept segment and every reject
scored against the manifest and the reference turns (`metrics.py`).

The run is the default configuration with what an offline 2-core machine needs:
`separation=none asr.model=base offline=true labeler=none`, models from an offline models folder
(`benchmarks/pipeline.models_dir` plus the multilingual whisper `base` joined from its two PyPI
halves), and any `--set key=value` on top.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional

from mikupal.committed import CommittedOutput

from . import metrics as m
from .manifest import KINDS, Entry, media_path, read_turns, turns_path

OFFLINE = ["separation=none", "asr.model=base", "offline=true", "labeler=none", "engine.progress=false"]


def offline_models_dir() -> Path:
    """benchmarks/.cache/models (shared ASD/YuNet, GE2E, tiny.en) + whisper/base."""
    from tests.audio_fixtures import whisper_base_dir

    from ..pipeline import models_dir

    d = models_dir()
    base = whisper_base_dir()
    link = d / "whisper" / "base"
    if base is not None and not link.exists():
        link.symlink_to(base)
    return d


def run_pipeline(media: Path, out: Path, entries: list[Entry], overrides: list[str]) -> dict:
    """A real `mikupal run` (mikupal.config.compose + mikupal.engine.run.run, through the CLI so that
    its whole process tree is timed) over the entries' files, listed in a text file."""
    import shutil

    from ..pipeline import timed

    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    listing = out.parent / f"{out.name}.inputs.txt"
    listing.write_text("".join(f"{media_path(media, e).resolve()}\n" for e in entries))
    cmd = [sys.executable, "-m", "mikupal.cli", "run", f"input={listing}", f"output={out}",
           f"models_dir={offline_models_dir()}", *OFFLINE, *overrides]
    r = timed(cmd)
    r.pop("stdout", None)
    r["command"] = "mikupal run " + " ".join(cmd[4:])
    return r


def _rows(out: Path) -> tuple[list[dict], list[dict]]:
    read = CommittedOutput(out)
    return read.read_segments().to_pylist(), read.read_rejects().to_pylist()


def _entry_of(rows: list[dict], entries: list[Entry]) -> dict[str, list[dict]]:
    names = {e.name for e in entries}
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        name = Path(r["source"]).name
        if name in names:
            by[name].append(r)
    return by


def _reject_spans(rows: list[dict], e: Entry, kept: bool) -> list[tuple[str, float]]:
    """(stage/reason, seconds) of a file's rejects. A reject without a span counts the whole file
    only when nothing else of the file was kept or rejected (a probe failure); beside span rejects
    it is a summary ('no utterance survived') and counts nothing."""
    spans = [r for r in rows if r.get("start") is not None and r.get("end") is not None]
    if spans or kept:
        return [(f"{r['stage']}/{r['reason']}", max(0.0, r["end"] - r["start"])) for r in spans]
    return [(f"{r['stage']}/{r['reason']}", e.seconds) for r in rows[:1]]


def yield_report(entries: list[Entry], segs: dict[str, list[dict]], rejs: dict[str, list[dict]]) -> dict:
    """Kept seconds overall, by kind and by file; rejected seconds by stage/reason."""
    per_file, by_kind = {}, {k: {"files": 0, "input_s": 0.0, "kept_s": 0.0, "segments": 0} for k in KINDS}
    rejected = []
    for e in entries:
        kept = sum(r["end"] - r["start"] for r in segs[e.name])
        spans = _reject_spans(rejs[e.name], e, bool(segs[e.name]))
        reasons = m.seconds_by(spans)
        rejected += spans
        per_file[e.name] = {"kind": e.kind, "seconds": e.seconds, "languages": e.languages,
                            "segments": len(segs[e.name]), "kept_s": round(kept, 2),
                            "kept_share": m.share(kept, e.seconds), "rejected_s": reasons}
        k = by_kind[e.kind]
        k["files"] += 1
        k["input_s"] += e.seconds
        k["kept_s"] += kept
        k["segments"] += len(segs[e.name])
    for k in by_kind.values():
        k["kept_share"] = m.share(k["kept_s"], k["input_s"])
        k["input_s"], k["kept_s"] = round(k["input_s"], 2), round(k["kept_s"], 2)
    total_in = sum(e.seconds for e in entries)
    total_kept = sum(f["kept_s"] for f in per_file.values())
    rejected_s = m.seconds_by(rejected)
    return {"input_s": round(total_in, 2), "kept_s": round(total_kept, 2), "kept_share": m.share(total_kept, total_in),
            # neither kept nor in a reject span: what VAD did not call speech (silence, music, noise)
            "not_speech_s": round(max(0.0, total_in - total_kept - sum(rejected_s.values())), 2),
            "by_kind": {k: v for k, v in by_kind.items() if v["files"]},
            "kinds_without_segments": [k for k, v in by_kind.items() if v["files"] and not v["segments"]],
            "rejected_s": rejected_s, "files": per_file}


def _ovrl_scored(segs: list[dict], rejs: list[dict]) -> list[tuple[float, float]]:
    """(OVRL, seconds) of kept segments and of `low_quality` rejects (the score from the message)."""
    kept = [(r["dnsmos_ovrl"], r["end"] - r["start"]) for r in segs if r.get("dnsmos_ovrl") is not None]
    low = [(m.parse_ovrl(r["message"]), r["end"] - r["start"]) for r in rejs
           if r["reason"] == "low_quality" and r.get("start") is not None]
    return kept + [(o, s) for o, s in low if o is not None]


def ovrl_report(entries: list[Entry], segs: dict[str, list[dict]], rejs: dict[str, list[dict]]) -> dict:
    """The OVRL curve over kept + `low_quality`-rejected speech, overall and by kind."""
    by_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in entries:
        by_kind[e.kind] += _ovrl_scored(segs[e.name], rejs[e.name])
    scored = [x for v in by_kind.values() for x in v]
    if not scored:
        return {"measured": False, "why": "no DNSMOS scores (quality.kind=none?)"}
    kept = [x for e in entries for x in _ovrl_scored(segs[e.name], [])]
    return {"measured": True, "scored_s": round(sum(s for _, s in scored), 2),
            "kept_scored_s": round(sum(s for _, s in kept), 2),
            "seconds_at_floor": m.ovrl_curve(scored),
            "seconds_at_floor_by_kind": {k: m.ovrl_curve(v) for k, v in by_kind.items() if v},
            "note": "low_quality pieces never reached vision: at a lower floor some of them would still be cut there"}


def purity_report(entries: list[Entry], segs: dict[str, list[dict]], media: Path) -> dict:
    """Per kept segment on a file with reference turns: its majority speaker's share of the
    reference speech in it; and speaker-id purity / completeness against the turns."""
    scored, pairs, worst, files = [], [], [], []
    for e in entries:
        turns = read_turns(turns_path(media, e))
        if turns is None:
            continue
        files.append(e.name)
        file_pairs = []
        for r in segs[e.name]:
            p = m.segment_purity(turns, r["start"], r["end"])
            if p.speaker is None:  # no reference speech in it (a partial reference, or noise)
                continue
            scored.append(p.share)
            file_pairs.append((r.get("speaker_id") or "?", p.speaker, p.speech_s))
            if p.share < m.PURE_SHARE:
                worst.append({"file": e.name, "start": round(r["start"], 2), "end": round(r["end"], 2),
                              "share": round(p.share, 3), "text": r.get("text", "")[:80]})
        pairs += [(f"{e.name}:{a}", f"{e.name}:{b}", w) for a, b, w in file_pairs]
    id_p, id_c = m.cluster_scores(pairs)
    return {"files_with_turns": files, "segments_scored": len(scored),
            "pure_share": m.share(sum(1 for s in scored if s >= m.PURE_SHARE), len(scored)) if scored else None,
            "mean_majority_share": round(sum(scored) / len(scored), 4) if scored else None,
            "impure": worst, "id_purity": round(id_p, 4) if pairs else None,
            "id_completeness": round(id_c, 4) if pairs else None,
            "attribution": "not measured: no reference face positions exist for these files"}


def single_speaker_ids(entries: list[Entry], segs: dict[str, list[dict]]) -> dict:
    """Speaker ids per file the manifest says has one speaker (should be 1 where segments are kept)."""
    return {e.name: len({r.get("speaker_id") for r in segs[e.name]} - {None, ""})
            for e in entries if e.speakers == 1 and segs[e.name]}


def language_report(entries: list[Entry], segs: dict[str, list[dict]]) -> dict:
    """Each kept segment's detected language against the file's languages in the manifest."""
    checked, wrong, detected = 0, [], Counter()
    for e in entries:
        for r in segs[e.name]:
            checked += 1
            detected[f"{'/'.join(e.languages)}->{r.get('language') or '?'}"] += 1
            if not m.language_matches(r.get("language", ""), e.languages):
                wrong.append({"file": e.name, "expected": e.languages, "detected": r.get("language"),
                              "probability": round(r.get("language_probability") or 0.0, 3),
                              "start": round(r["start"], 2), "text": r.get("text", "")[:80]})
    return {"checked": checked, "mismatches": len(wrong), "by_expected_to_detected": dict(detected),
            "mismatched": wrong}


def score(out: Path, media: Path, entries: list[Entry]) -> dict:
    seg_rows, rej_rows = _rows(out)
    segs, rejs = _entry_of(seg_rows, entries), _entry_of(rej_rows, entries)
    return {"yield": yield_report(entries, segs, rejs), "ovrl": ovrl_report(entries, segs, rejs),
            "purity": purity_report(entries, segs, media), "single_speaker_ids": single_speaker_ids(entries, segs),
            "language": language_report(entries, segs)}


def measure(media: Path, out: Path, entries: list[Entry], overrides: list[str], run: bool = True) -> dict:
    """Run (unless `run` is False: score an existing output) and score."""
    timing: Optional[dict] = run_pipeline(media, out, entries, overrides) if run else None
    result = {"overrides": OFFLINE + overrides, "files": len(entries), **score(out, media, entries)}
    if timing:
        input_s = result["yield"]["input_s"]
        result["run"] = {k: timing[k] for k in ("command", "wall_s", "cpu_s", "peak_rss_mb")}
        result["run"]["speed_ratio"] = round(input_s / timing["wall_s"], 3) if timing["wall_s"] else None
    return result
