"""The vision stage alone, in one process, one thread, on the speed benchmark's 5-minute input:
its CPU seconds, the seconds of each of its steps (`VisionStage.steps`) and what it decided.

The stages before vision (probe, VAD, ASR, speaker, quality; `engine=sequential`) run once and
their utterances are cached as JSON (`--cache`), so the vision stage can be timed again and again
on exactly the same items; `--code DIR` imports `mikupal` from DIR, so one command times two trees
back to back and checks that they decide the same (segments, speakers, scores):

    python -m benchmarks.vision_steps --code /path/to/before --out /tmp/before.json
    python -m benchmarks.vision_steps --out /tmp/after.json --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cfg(video: Path, work: Path):
    from mikupal.config import compose

    sys.path.insert(0, str(ROOT))
    from benchmarks.stage_cost import _models

    models = work / "models"
    if not models.exists():
        _models(models)
    return compose([f"input={video}", f"output={work / 'out'}", f"models_dir={models}", "profile=cpu", "separation=none",
                    "asr.model=tiny.en", "offline=true", "engine.progress=false", "labeler=none", "engine=sequential",
                    "engine.threads=1", "duplicates.kind=none"])


def prepare(video: Path, cache: Path) -> list:
    """The utterances that reach the vision stage (cached in `cache`/items.jsonl with the work files)."""
    from mikupal.engine.stages import stage_classes
    from mikupal.records import WorkItem

    listing = cache / "items.jsonl"
    if listing.is_file():
        return [WorkItem.model_validate_json(line) for line in listing.read_text().splitlines()]
    cache.mkdir(parents=True, exist_ok=True)
    cfg = _cfg(video, cache)
    stages = [cls(cfg, cache / "out", threads=1) for cls in stage_classes(cfg)]
    current = [WorkItem(source=str(video), path=str(video.resolve()), video_id="bench")]
    for st in stages:
        if st.name == "vision":
            break
        st.setup()
        current = [out for it in current for out in st.iter_item(it)]
    listing.write_text("".join(it.model_dump_json() + "\n" for it in current))
    return current


def decisions(items: list) -> list[dict]:
    """What the vision stage decided, item by item: the figures two trees must agree on."""
    out = []
    for it in items:
        d, seg = it.data, it.data.segment
        score = d.asd_score if d.asd_score is None or math.isfinite(d.asd_score) else None
        out.append({"segment": seg.segment_id if seg else it.item_id, "start": seg.start if seg else None,
                    "end": seg.end if seg else None, "status": it.status,
                    "reason": it.rejects[-1].reason if it.rejects else None, "speaker_track": d.speaker_track,
                    "asd_score": score, "speaking_fraction": d.speaking_fraction})
    return out


def measure(video: Path, cache: Path) -> dict:
    import torch

    from mikupal.engine.stages import stage_classes

    torch.set_num_threads(1)
    items = prepare(video, cache)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _cfg(video, cache)
        vision = next(cls for cls in stage_classes(cfg) if cls.name == "vision")(cfg, Path(tmp), threads=1)
        vision.setup()
        t, wall = time.process_time(), time.perf_counter()
        done = [out for it in items for out in vision.iter_item(it)]
        cpu, wall = time.process_time() - t, time.perf_counter() - wall
    steps = vision.steps
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "items": len(items),
            "steps_s": {k: round(v, 2) for k, v in sorted(steps.timings.items())}, "counts": dict(steps.counts),
            "decisions": decisions(done)}


def compare(a: list[dict], b: list[dict], tol: float = 0.02) -> list[str]:
    """Differences between two runs' decisions (scores within `tol`)."""
    if len(a) != len(b):
        return [f"{len(a)} items against {len(b)}"]
    diffs = []
    for x, y in zip(a, b):
        for k in x:
            same = (x[k] is None) == (y[k] is None) and (
                x[k] is None or (abs(x[k] - y[k]) <= tol if isinstance(x[k], float) else x[k] == y[k]))
            if not same:
                diffs.append(f"{x['segment']} {k}: {x[k]} != {y[k]}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--code", type=Path, default=ROOT, help="the tree whose mikupal is timed")
    p.add_argument("--minutes", type=int, default=5)
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mikupal-vision-steps")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--compare", type=Path, help="a previous --out: report where the decisions differ")
    args = p.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    from benchmarks.inputs import long_input

    import mikupal

    video = long_input(args.minutes)
    result = {"command": "python -m benchmarks.vision_steps " + " ".join(argv if argv is not None else sys.argv[1:]),
              "code": str(Path(mikupal.__file__).parents[1]), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              **measure(video, args.cache / f"{args.minutes}min")}
    if args.compare:
        result["differences"] = compare(json.loads(args.compare.read_text())["decisions"], result["decisions"])
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "decisions"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
