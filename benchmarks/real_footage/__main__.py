"""Real footage: fetch it, run the pipeline on it, and report yield, quality, purity, ids, language.

    python -m benchmarks.real_footage fetch --to DIR
    python -m benchmarks.real_footage run --media DIR --out /tmp/rf [--set key=value ...] [--label NAME]
    python -m benchmarks.real_footage run --media DIR --out /tmp/rf --score-only   # re-score an output

`run` appends its figures under `runs.<label>` of benchmarks/results/real_footage.json (the label
defaults to the overrides joined, or `default`). Audio-only entries are skipped unless
`--include-audio` (the pipeline rejects them at probe: `no_video_stream`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .manifest import load, media_path


def _fetch(a) -> int:
    from .fetch import fetch_all

    results = fetch_all(Path(a.to))
    failed = [n for n, s in results.items() if s.startswith("failed")]
    print(f"{len(results) - len(failed)} of {len(results)} files in {a.to}")
    return 1 if failed else 0


def _pipeline_commit() -> str:
    """The last commit that changed mikupal/ (the pipeline measured), '+dirty' with uncommitted changes there."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    git = ["git", "-C", str(root)]
    try:
        sha = subprocess.run([*git, "log", "-1", "--format=%h", "--", "mikupal", "conf"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "mikupal", "conf"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _run(a) -> int:
    from ..pipeline import RESULTS, machine
    from .measure import measure

    media = Path(a.media)
    entries = [e for e in load() if (e.video or a.include_audio) and (not a.only or e.name in a.only)]
    missing = [e.name for e in entries if not media_path(media, e).is_file()]
    if missing:
        raise SystemExit(f"missing in {media}: {missing} (python -m benchmarks.real_footage fetch --to {media})")
    label = a.label or ("_".join(a.set) if a.set else "default")
    result = measure(media, Path(a.out) / label, entries, a.set, run=not a.score_only)
    path = RESULTS / "real_footage.json"
    data = json.loads(path.read_text()) if path.is_file() else {"benchmark": "real_footage", "runs": {}}
    data.update({"machine": machine(), "media_files": [e.name for e in entries]})
    before = data["runs"].get(label, {})
    if a.score_only and "run" in before:  # re-scored: the timing and date stay the run's
        result["run"] = before["run"]
    data["runs"][label] = {"when": before.get("when") if a.score_only else time.strftime("%Y-%m-%d %H:%M:%S"),
                           "pipeline_commit": before.get("pipeline_commit") if a.score_only else _pipeline_commit(), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    y = result["yield"]
    print(json.dumps({"label": label, "kept_share": y["kept_share"], "by_kind": {k: v["kept_share"] for k, v in y["by_kind"].items()},
                      "kinds_without_segments": y["kinds_without_segments"], "rejected_s": y["rejected_s"],
                      "ovrl": result["ovrl"].get("seconds_at_floor"), "pure_share": result["purity"]["pure_share"],
                      "single_speaker_ids": result["single_speaker_ids"], "language_mismatches": result["language"]["mismatches"],
                      "run": result.get("run")}, indent=1, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_footage", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the manifest's files and check their sha256")
    f.add_argument("--to", required=True)
    r = sub.add_parser("run", help="run the pipeline on the footage and score it")
    r.add_argument("--media", required=True, help="the folder `fetch` filled")
    r.add_argument("--out", required=True, help="where the run's outputs go (one folder per label)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeatable)")
    r.add_argument("--label", help="the name of this run in the results file")
    r.add_argument("--only", nargs="*", help="only these manifest names")
    r.add_argument("--include-audio", action="store_true", help="also pass the audio-only files")
    r.add_argument("--score-only", action="store_true", help="score an existing output, do not run")
    a = ap.parse_args(argv)
    return _fetch(a) if a.cmd == "fetch" else _run(a)


if __name__ == "__main__":
    raise SystemExit(main())
