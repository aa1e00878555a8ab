"""Laughter, shouting and crying by the same person: does the speaker check see a second voice?

One default run (in one process, `engine=sequential`, so the speaker and vision stages can be
watched) over real single-person clips where one person speaks and laughs, shouts or cries in one
take. Per clip: the voice suspects (`speaker/turns.py`), how the faces were asked (dense ASD or
frames around the suspects), the `speaker_change` / `overlapping_speech` rejects and the seconds
they took, and the speaker ids. Per utterance the voice check is read directly too: each suspect's
similarity against its thresholds, and the similarity of every stretch without words (a laugh, a
sob) to the rest of the utterance.

    python -m benchmarks.laughter [--footage DIR] [--asr tiny.en|base] [--json benchmarks/results/laughter.json]

The clips: tests/data/media/laugh_intro.flac (shipped, MIT: a man says his name and laughs; put on
a black video, so no face can tell) and, when DIR holds them (`python -m benchmarks.real_footage
fetch --to DIR`), the MER2023 samples of a woman scolding (00000694) and a woman crying
(00000727) and the restaurant monologue (local measurement only). Figures: benchmarks/short_turns.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
LAUGH = ROOT / "tests" / "data" / "media" / "laugh_intro.flac"
#: (file in the footage folder, what the one person does, whisper model)
FOOTAGE = [("mer_zh_00000694.mp4", "scolds, shouting", "base"), ("mer_zh_00000727.mp4", "cries while apologising", "base"),
           ("restaurant_monologue.mp4", "talks to camera (calm; the baseline)", "tiny.en")]


def laugh_video(out: Path) -> Path:
    """The shipped laugh on a black 25 fps video (no face: the voice decides alone)."""
    path = out / "laugh_intro.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25", "-i", str(LAUGH),
                    "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
    return path


class Watch:
    """What the speaker and vision stages saw, per utterance (segment id)."""

    def __init__(self) -> None:
        self.suspects: dict[str, list] = {}
        self.asked: dict[str, str] = {}
        self.stretches: dict[str, list] = defaultdict(list)
        self.windows: dict[str, list] = {}

    def install(self):
        import mikupal.stages.speaker as sp
        import mikupal.vision.search as vs
        from mikupal.speaker.turns import short_turns as real_turns

        watch, real_score = self, vs.SpeakerSearch.score

        def short_turns(encoder, frames, windows, words, t0, rules, *a, **k):
            out = real_turns(encoder, frames, windows, words, t0, rules, *a, **k)
            key = f"{t0:.2f}-{words[-1].end if words else t0:.2f}"
            watch.suspects[key] = [s.model_dump() for s in out]
            watch.windows[key] = _window_similarities(windows)
            watch.stretches[key] = _wordless(encoder, frames, windows, words, t0)
            return out

        def score(self_, u, exchange=False, suspects=(), t0=0.0):
            before = dict(self_.steps.counts)
            r = real_score(self_, u, exchange, suspects, t0)
            grew = [k for k in ("dense_items", "dense_on_doubt", "focused_on_doubt") if self_.steps.counts[k] > before.get(k, 0)]
            watch.asked[f"{t0:.2f}"] = grew[0] if grew else "sample"
            return r

        sp.short_turns, vs.SpeakerSearch.score = short_turns, score


def _window_similarities(windows) -> list[float]:
    """Each speech window's similarity to the mean of the others (what the overlap test reads)."""
    e = np.asarray([x for x, s in zip(windows.embeddings, windows.speech) if s], dtype=np.float64)
    if len(e) < 2:
        return []
    out = []
    for i in range(len(e)):
        m = np.delete(e, i, axis=0).mean(axis=0)
        out.append(round(float(e[i] @ (m / np.linalg.norm(m))), 3))
    return out


def _wordless(encoder, frames, windows, words, t0) -> list[dict]:
    """Stretches of 0.4 s or more of loud frames that no word covers (a laugh, a sob), and their voice
    (GE2E over the stretch alone) against the utterance's speech windows that lie outside it."""
    from mikupal.speaker.turns import WINDOW_SPILL

    loud = np.asarray(frames.loud, dtype=bool).copy()
    for w in words:
        loud[max(0, int((w.start - t0) * 100)) : int((w.end - t0) * 100) + 1] = False
    d = np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))
    keep = [i for i, s in enumerate(windows.speech) if s]
    st, en = (np.asarray([getattr(windows, k)[i] for i in keep]) for k in ("starts", "ends"))
    emb = np.asarray([windows.embeddings[i] for i in keep], dtype=np.float64).reshape(len(keep), -1)
    out = []
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        if b - a < 40:
            continue
        s0, s1 = t0 + a / 100, t0 + b / 100
        outside = emb[np.minimum(en, s1) - np.maximum(st, s0) <= WINDOW_SPILL] if len(emb) else emb
        sim = None
        if len(outside):
            e = encoder.embed_prefixes(frames, np.asarray([a]), int(b - a))[0, -1].astype(np.float64)
            m = outside.mean(axis=0)
            sim = round(float(e @ (m / np.linalg.norm(m))), 3)
        out.append({"start": round(s0, 2), "end": round(s1, 2), "similarity": sim, "rest_windows": int(len(outside))})
    return out


def _rows(out: Path, sub: str) -> list[dict]:
    return [r for f in sorted((out / sub).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def run_clip(path: Path, asr: str, models_dir: str, out: Path, watch: Watch) -> dict:
    from mikupal.config import compose
    from mikupal.engine.run import run

    run(compose([f"input={path}", f"output={out}", f"models_dir={models_dir}", "separation=none", f"asr.model={asr}",
                 "labeler=none", "duplicates.kind=none", "offline=true", "engine=sequential", "engine.progress=false"]))
    segs, rejects = _rows(out, "segments"), _rows(out, "rejects")
    cut = [r for r in rejects if r["reason"] in ("speaker_change", "overlapping_speech")]
    return {
        "kept_segments": len(segs), "kept_seconds": round(sum(r["end"] - r["start"] for r in segs), 2),
        "speaker_ids": sorted({r["speaker_id"] for r in segs if r.get("speaker_id")}),
        "rejects": sorted({r["reason"] for r in rejects}),
        "cut_rejects": [{"reason": r["reason"], "start": r["start"], "end": r["end"], "message": r.get("message", "")} for r in cut],
        "cut_seconds": round(sum((r["end"] or 0) - (r["start"] or 0) for r in cut), 2),
        "suspects": dict(watch.suspects), "faces_asked": dict(watch.asked), "wordless_stretches": dict(watch.stretches),
        "window_similarity_to_rest": dict(watch.windows),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.laughter")
    ap.add_argument("--footage", type=Path, default=None)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    watch = Watch()
    watch.install()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(laugh_video(Path(tmp)), "says his name, then laughs", "tiny.en")]
        clips += [(args.footage / n, what, asr) for n, what, asr in FOOTAGE if args.footage and (args.footage / n).is_file()]
        for path, what, asr in clips:
            watch.__init__()
            r = run_clip(path, asr, args.models_dir, Path(tmp) / f"out_{path.stem}", watch)
            results[path.name] = {"what": what, "asr": asr, **r}
            print(path.name, json.dumps(r, indent=1, default=str), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
