"""One command for every measured figure: run the benchmarks, then rewrite benchmarks/README.md
(`benchmarks.summary`) and README.md's "Measured figures" table from benchmarks/results/, each
figure with the date of the run that produced it and the command that did.

    python -m benchmarks.figures                      # run every benchmark below, then write both
    python -m benchmarks.figures --only cost speed    # run these, then write both
    python -m benchmarks.figures --write-only         # write both from the results already there

Nothing in the table is typed in. A benchmark of its own adds a row by writing, in its result
JSON, `"readme": {"what": ..., "figure": ..., "command": ...}` (and `"when"`): the table shows it.
Timings on a shared machine are noisy: read them against the controls timed in the same run
(benchmarks/README.md does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"

#: name -> the command that (re)measures it
RUNS: dict[str, list[str]] = {
    "speed": ["-m", "benchmarks.pipeline", "speed", "--minutes", "5"],
    "speed_no_quality": ["-m", "benchmarks.pipeline", "speed", "--minutes", "5", "--set", "quality.kind=none"],
    "scaling": ["-m", "benchmarks.pipeline", "scaling", "--minutes", "10", "60"],
    "parallel": ["-m", "benchmarks.pipeline", "parallel", "--minutes", "5"],
    "cost": ["-m", "benchmarks.pipeline", "cost"],
    "quality": ["-m", "benchmarks.quality"],
    "speakers": ["-m", "benchmarks.speakers", "--baseline"],
    "audio_memory": ["-m", "pytest", "benchmarks/test_audio_memory.py", "-m", "benchmark", "-s", "-q"],
    "small_files": ["-m", "benchmarks.pipeline", "small-files", "--clips", "120"],
}


def load(name: str) -> Optional[dict]:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def when(name: str, result: Optional[dict]) -> str:
    """The day a result was measured: its own `when`, else the day its file was last committed."""
    if result and result.get("when"):
        return str(result["when"])[:10]
    path = RESULTS / (name if "." in name else f"{name}.json")
    out = subprocess.run(["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "undated"


Row = tuple[str, str, str, str]  # what, figure, date, command


def _missing(what: str, name: str) -> Row:
    return (what, f"not measured yet: run `python {' '.join(RUNS[name])}`", "-", f"`python {' '.join(RUNS[name])}`")


def speed_rows() -> list[Row]:
    r, nq = load("speed_5min"), load("speed_5min_quality-kind-none")
    if not r:
        return [_missing("whole `mikupal run`, 5 min of 720p30 video", "speed")]
    run, rep = r["run"], r["run"]["report"]
    figure = (f"**{rep['speed_ratio']}x real time** by its report, **{run['speed_ratio_whole_command']}x** timed whole "
              f"({run['wall_s']} s, {run.get('cpu_s', '?')} CPU-s) with the defaults (local engine, DNSMOS on)")
    if "run_ray" in r:
        rr = r["run_ray"]
        figure += (f"; under a local Ray (`engine=ray`) {rr['report']['speed_ratio']}x by its report, "
                   f"{rr['speed_ratio_whole_command']}x whole ({rr['wall_s']} s, {rr.get('cpu_s', '?')} CPU-s)")
    if nq:
        figure += (f"; **{nq['run']['speed_ratio_whole_command']}x** ({nq['run']['wall_s']} s) with "
                   f"`quality.kind=none` ({when('speed_5min_quality-kind-none', nq)})")
    dec = r["decode_only"]
    return [
        ("whole `mikupal run`, 5 min of 720p30 talking-head video, start-up included", figure, when("speed_5min", r),
         "`python -m benchmarks.pipeline speed --minutes 5` (`--set quality.kind=none`)"),
        ("same file, decode only (ffmpeg, all cores)", f"{dec['ffmpeg_speed_ratio']}x real time", when("speed_5min", r),
         "same"),
        ("retention on that file", f"{100 * rep['retention']:.0f}% of input seconds kept ({rep['segments']} segments)",
         when("speed_5min", r), "same"),
        ("peak RSS of the run's process tree, 5 min", f"{run['peak_rss_mb'] / 1024:.1f} GB", when("speed_5min", r), "same"),
    ]


def scaling_rows() -> list[Row]:
    r = load("scaling")
    if not r:
        return [_missing("10 vs 60 min of input", "scaling")]
    keys = sorted(r["runs"], key=int)
    hi = r["runs"][keys[-1]]
    return [(f"{keys[0]} vs {keys[-1]} min of input",
             f"time ratio {r['time_ratio']} for {r['input_ratio']:.0f}x the input (target <= 6.6), peak RSS ratio "
             f"{r['peak_rss_ratio']} (target <= 1.2); {keys[-1]} min at {hi['speed_ratio_whole_command']}x real time",
             when("scaling", r), f"`python -m benchmarks.pipeline scaling --minutes {' '.join(keys)}`")]


def parallel_rows() -> list[Row]:
    r = load("parallel")
    if not r:
        return [_missing("Ray pipeline vs the same stages in one process", "parallel")]
    return [("Ray pipeline vs the same stages in one process", f"{r['speedup']}x (target 1.6x)", when("parallel", r),
             "`python -m benchmarks.pipeline parallel`")]


def cost_rows() -> list[Row]:
    r = load("cost")
    if not r:
        return [_missing("labeler cost per kept hour", "cost")]
    parts = []
    for model, x in (r.get("models") or {}).items():
        hour, batch = x["report"]["cost_per_kept_hour_usd"], x["batch_cost_per_kept_hour_usd"]
        parts.append(f"{model} {_usd(hour)}" + (f" ({_usd(batch)} with the Batch API)" if batch is not None else ""))
    return [("labeler cost per kept hour (fake server's token counts x conf/labeler/gemini.yaml prices)",
             ", ".join(parts) or "-", when("cost", r), "`python -m benchmarks.pipeline cost`")]


def _usd(v) -> str:
    return "no price" if v is None else f"${v:.2f}"


def quality_rows() -> list[Row]:
    r = load("quality")
    if not r:
        return [_missing("quality stage (DNSMOS)", "quality")]
    rows = r["rows"]
    lo, hi = min(x["cpu_s_per_media_s_max1"] for x in rows), max(x["cpu_s_per_media_s_max1"] for x in rows)
    span = f"{min(x['utterance_s'] for x in rows):g}-{max(x['utterance_s'] for x in rows):g} s"
    return [("quality stage (DNSMOS), one ONNX thread, default `max_windows=1`",
             f"{lo:.2f}-{hi:.2f} CPU-s per media second for {span} utterances", when("quality", r),
             "`python -m benchmarks.quality`")]


def speakers_rows() -> list[Row]:
    r = load("speakers")
    if not r:
        return [_missing("speaker purity and identity", "speakers")]
    s = r["speaker_checks"]
    return [("speaker purity and identity, constructed conversations "
             f"({r['media_seconds']:.0f} s)", f"kept segments holding one voice **{100 * s['pure_share']:.1f}%**; speaker "
             f"box on the right person {100 * s['attribution_accuracy']:.0f}%; ids purity / completeness "
             f"{s['id_purity']} / {s['id_completeness']} per video, {s['global_id_purity']} / {s['global_id_completeness']} "
             f"across videos; {100 * s['retention_of_voiced']:.0f}% of voiced seconds kept", when("speakers", r),
             "`python -m benchmarks.speakers --baseline`")]


def vision_rows() -> list[Row]:
    p = RESULTS / "vision_tradeoffs.jsonl"
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []
    base = [x for x in rows if x.get("name") == "base"]
    if not base:
        return [("vision stage alone", "not measured yet: run `python -m benchmarks.vision_tradeoffs`", "-",
                 "`python -m benchmarks.vision_tradeoffs`")]
    x = base[-1]
    return [("vision stage alone (decode, detect, track, ASD, clip export)",
             f"{x['cpu'] / x['seconds']:.2f} CPU-s per video second; speaker right on {x['composite_ok']}/{x['composite_n']} "
             f"composites, {x['single_ok']}/{x['single_n']} clips, {x['silent_ok']}/{x['silent_n']} silent rejected",
             str(x.get("when") or "")[:10] or when("vision_tradeoffs.jsonl", None), "`python -m benchmarks.vision_tradeoffs`")]


def audio_memory_rows() -> list[Row]:
    p = RESULTS / "audio_memory.jsonl"
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []
    hour = [x for x in rows if x.get("name") == "frontend_cpu_separation_none" and x.get("input_seconds") == 3600.0]
    if not hour:
        return [_missing("audio front end, 1-hour input", "audio_memory")]
    x = hour[-1]
    return [("audio front end, 1-hour input", f"{x['peak_rss_mb']:.0f} MB peak memory", str(x["when"])[:10],
             "`python -m pytest benchmarks/test_audio_memory.py -m benchmark -s`")]


def small_files_rows() -> list[Row]:
    r = load("small_files_120")
    if not r:
        return [_missing("120 clips of 3-6 s against the same seconds as one file", "small_files")]
    best = r["best"]
    one, many = best["one_file"], best["clips"]
    cmd = "`python -m benchmarks.pipeline small-files --clips 120`"
    speed = (f"**{100 * one['wall_s'] / many['wall_s']:.0f}%** of the one file's speed with `asr.pack=true` (wall, {many['wall_s']} s against "
             f"{one['wall_s']} s; target >= 90%), {100 * one['cpu_s'] / many['cpu_s']:.0f}% in CPU-s")
    un = r.get("unpacked")
    if un:
        speed += f"; each clip alone (`asr.pack=false`, the default): {100 * one['wall_s'] / un['wall_s']:.0f}%"
    rows = [("120 clips of 3-6 s against the same seconds as one file", speed, when("small_files_120", r), cmd)]
    diff = r.get("packed_vs_unpacked")
    if diff:
        rows.append(("packed clips' text against each clip alone", f"word error rate {100 * diff['word_error_rate']:.1f}% "
                     f"(case and punctuation aside); {diff['videos_words_differ']} of {diff['videos_with_segments']} clips "
                     f"differ in a word, {diff['videos_kept_only_one_side']} kept on one side only", when("small_files_120", r), cmd))
    mem = many.get("memory_by_process", {})
    workers = [(k, v) for k, v in mem.items() if k.endswith("Stage") or k.startswith("driver")]
    if workers:
        rows.append(("peak memory per worker, the 120 clips' run (RSS; USS: its own pages)",
                     ", ".join(f"{k.split(' (')[0]} {v['peak_rss_mb']:.0f} MB ({v['peak_uss_mb']:.0f})" for k, v in workers),
                     when("small_files_120", r), cmd))
    return rows


def extra_rows() -> list[Row]:
    """Rows other benchmarks declare in their result files (`"readme": {...}`)."""
    out = []
    for p in sorted(RESULTS.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError:
            continue
        row = r.get("readme") if isinstance(r, dict) else None
        if isinstance(row, dict) and {"what", "figure", "command"} <= set(row):
            out.append((row["what"], row["figure"], when(p.stem, r), f"`{row['command']}`"))
    return out


SECTIONS: list[Callable[[], list[Row]]] = [speed_rows, small_files_rows, scaling_rows, parallel_rows, vision_rows, quality_rows,
                                           speakers_rows, cost_rows, audio_memory_rows, extra_rows]


def table() -> str:
    rows = [row for section in SECTIONS for row in section()]
    lines = ["| what | figure | measured | command |", "|---|---|---|---|"]
    lines += [f"| {w} | {f} | {d} | {c} |" for w, f, d, c in rows]
    return "\n".join(lines)


def write_readme(path: Path = README) -> bool:
    """Replace the table between the markers; True when the text changed."""
    text = path.read_text()
    head, sep, rest = text.partition(START)
    if not sep:
        raise SystemExit(f"{path} has no {START} marker")
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{table()}\n{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(RUNS), help="run only these benchmarks")
    ap.add_argument("--write-only", action="store_true", help="run nothing: write both READMEs from the results")
    a = ap.parse_args(argv)
    if not a.write_only:
        for name in a.only or list(RUNS):
            print(f"running {name}: python {' '.join(RUNS[name])}", flush=True)
            subprocess.run([sys.executable, *RUNS[name]], cwd=ROOT, check=True)
    from . import summary

    summary.main()
    print(f"{'rewrote' if write_readme() else 'unchanged:'} {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
