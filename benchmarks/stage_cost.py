"""CPU seconds per media second of the speaker and vision stages, in one process, one thread.

Every stage of a default run (`profile=cpu separation=none labeler=none asr.model=tiny.en
quality.kind=none`) runs in this process on each input in turn (as `engine=sequential` does), and
the process CPU time spent inside each stage is summed. Two sets of inputs:

* `single`: the five real single-speaker clips (../shared/media/vr_face1-5.mp4): what the short-turn
  checks cost where there is no second person (the speed benchmark's kind of footage);
* `short_turns`: the constructed conversations with 0.5-2 s turns (tests/conversations.py).

`--code DIR` imports `mikupal` from DIR, so one script times two trees (before/after a change):

    python benchmarks/stage_cost.py --code /path/to/other/tree --out before.json
    python benchmarks/stage_cost.py                            # this tree: benchmarks/results/stage_cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _models(root: Path) -> Path:
    """A models folder from the offline sources the tests use (tests/conftest.py `models_dir`)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from audio_fixtures import ge2e_weights, tiny_en_dir, whisper_base_dir

    root.mkdir(parents=True)
    for kind in ("light-asd", "yunet"):
        (root / kind).symlink_to(SHARED / "models" / kind)
    (root / "ge2e").mkdir()
    (root / "ge2e" / "pretrained.pt").symlink_to(ge2e_weights())
    (root / "whisper").mkdir()
    (root / "whisper" / "tiny.en").symlink_to(tiny_en_dir())
    if whisper_base_dir() is not None:  # the language check of an English-only model
        (root / "whisper" / "base").symlink_to(whisper_base_dir())
    return root


def measure(videos: list[Path], work: Path) -> dict:
    import torch

    from mikupal.config import compose
    from mikupal.engine.inputs import expand_inputs
    from mikupal.engine.stages import stage_classes
    from mikupal.records import WorkItem

    torch.set_num_threads(1)
    import librosa.feature  # noqa: F401  (its first import costs seconds: not the stages' cost)

    listing = work / "inputs.txt"
    listing.write_text("\n".join(str(v) for v in videos) + "\n")
    cfg = compose([f"input={listing}", f"output={work / 'out'}", f"models_dir={_models(work / 'models')}", "profile=cpu",
                   "separation=none", "asr.model=tiny.en", "offline=true", "engine.progress=false", "labeler=none",
                   "quality.kind=none", "engine=sequential", "engine.threads=1"])
    stages = [cls(cfg, work / "out", threads=1) for cls in stage_classes(cfg)]
    for st in stages:
        st.setup()
    cpu: dict[str, float] = defaultdict(float)
    media = 0.0
    for src, path, vid in expand_inputs(cfg.input).videos:
        item = WorkItem(source=src, path=path, video_id=vid)
        current = [item]
        for st in stages:
            t = time.process_time()
            current = [out for it in current for out in st.iter_item(it)]
            cpu[st.name] += time.process_time() - t
        from mikupal import media as codecs

        media += codecs.probe(path).duration
    vision = next(st for st in stages if st.name == "vision")
    return {"media_seconds": round(media, 2), "cpu_s_per_media_s": {k: round(v / media, 4) for k, v in cpu.items()},
            "vision_counts": dict(vision.counts)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--code", type=Path, default=ROOT, help="the tree whose mikupal is timed")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stage_cost.json")
    p.add_argument("--sets", nargs="+", default=["single", "short_turns"])
    args = p.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT / "tests"))
    from conversations import short_turn_set

    result = {"command": "python benchmarks/stage_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "code": str(args.code.resolve()), "when": time.strftime("%Y-%m-%d %H:%M:%S"), "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"single": [SHARED / "media" / f"vr_face{i}.mp4" for i in range(1, 6)],
                "short_turns": [Path(tmp) / "conv" / f"{name}.mp4" for name in short_turn_set(Path(tmp) / "conv")]}
        for name in args.sets:
            work = Path(tmp) / name
            work.mkdir()
            result["sets"][name] = measure(sets[name], work)
            print(name, json.dumps(result["sets"][name]))
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
