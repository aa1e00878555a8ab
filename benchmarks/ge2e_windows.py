"""How far GE2E can be trusted on short stretches of voice: the numbers behind the short-turn test.

For each stretch length (0.5, 0.75, 1.0, 1.5 s), every stretch of speech of that length (every
0.25 s) of each real voice in ../shared/media is embedded on its own, and compared with

* **rest**: a voice's mean over the rest of its clip (the 1.5 s windows that do not touch the
  stretch) against the other voices' means: how a short turn at an utterance's edge compares with
  the utterance's voice;
* **pair**: another stretch of the same length, of the same voice (not overlapping) or of another:
  how two short turns compare with each other.

It reports the similarity percentiles of same-voice and different-voice pairs, the threshold with
the fewest errors (equal weight), and at the thresholds the speaker stage uses, the share of
same-voice stretches called another voice (false change) and of other voices passed (miss).

    python -m benchmarks.ge2e_windows     # writes benchmarks/results/ge2e_windows.json
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import numpy as np

from .inputs import ROOT

SHARED = ROOT.parent / "shared"
LENGTHS = (0.5, 0.75, 1.0, 1.5)
HOP = 0.25


def voices() -> dict[str, np.ndarray]:
    """Every single-voice recording of ../shared/media at 16 kHz (the stereo file: one voice a channel)."""
    import soundfile as sf

    from mikupal import media

    out = {f"vr_face{i}": media.decode_audio(SHARED / "media" / f"vr_face{i}.mp4", sample_rate=16000) for i in range(1, 6)}
    out["jfk"] = media.decode_audio(SHARED / "media" / "jfk.flac", sample_rate=16000)
    out["silero_test"] = media.decode_audio(SHARED / "media" / "silero_test.wav", sample_rate=16000)
    stereo, rate = sf.read(SHARED / "media" / "fw_stereo_diarization.wav", dtype="float32")
    assert rate == 16000
    out["fw_left"], out["fw_right"] = stereo[:, 0].copy(), stereo[:, 1].copy()
    return out


def stretches(encoder, audio: np.ndarray, length: float):
    """(starts, ends, embeddings) of the speech stretches of `length` seconds every HOP seconds."""
    w = encoder.embed_windows(audio, length, HOP)
    keep = np.asarray(w.speech, dtype=bool)
    return w.starts[keep], w.ends[keep], w.embeddings[keep]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(1e-12, float(np.linalg.norm(v)))


def measure(encoder) -> dict:
    audio = voices()
    ref = {name: stretches(encoder, a, 1.5) for name, a in audio.items()}  # the encoder's usual windows
    means = {name: _unit(e.mean(axis=0)) for name, (_, _, e) in ref.items()}
    out: dict = {"voices": {k: round(len(a) / 16000, 2) for k, a in audio.items()}, "lengths": {}}
    for length in LENGTHS:
        rest_same, rest_diff, pair_same, pair_diff = [], [], [], []
        got = {name: stretches(encoder, a, length) for name, a in audio.items()}
        for name, (s, e, emb) in got.items():
            rs, re_, remb = ref[name]
            for a, b, x in zip(s, e, emb):
                away = (re_ <= a - HOP) | (rs >= b + HOP)  # the clip's other windows, not touching this one
                if away.sum() >= 2:
                    rest_same.append(float(x @ _unit(remb[away].mean(axis=0))))
                rest_diff += [float(x @ means[o]) for o in means if o != name]
            for i, j in combinations(range(len(s)), 2):
                if s[j] >= e[i] or s[i] >= e[j]:
                    pair_same.append(float(emb[i] @ emb[j]))
        for (n1, (_, _, e1)), (n2, (_, _, e2)) in combinations(got.items(), 2):
            pair_diff += (e1 @ e2.T).ravel().tolist()
        out["lengths"][str(length)] = {"rest": summary(rest_same, rest_diff), "pair": summary(pair_same, pair_diff)}
    return out


def summary(same: list[float], diff: list[float]) -> dict:
    s, d = np.asarray(same), np.asarray(diff)
    grid = np.linspace(0.3, 0.95, 131)
    errors = [(float((s < t).mean() + (d >= t).mean()), float(t)) for t in grid]
    err, best = min(errors)
    at = {f"{t:.2f}": {"false_change": round(float((s < t).mean()), 4), "miss": round(float((d >= t).mean()), 4)}
          for t in (0.55, 0.6, 0.65, 0.7, 0.75)}
    pct = lambda x, q: [round(float(v), 3) for v in np.percentile(x, q)]  # noqa: E731
    return {
        "same": {"n": len(s), "p1_p5_p50": pct(s, [1, 5, 50]), "min": round(float(s.min()), 3)},
        "different": {"n": len(d), "p50_p95_p99": pct(d, [50, 95, 99]), "max": round(float(d.max()), 3)},
        "best_threshold": round(best, 3), "best_error_sum": round(err, 4), "at": at,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ge2e_windows.json")
    args = p.parse_args(argv)
    import torch

    from mikupal.speaker.embed import VoiceEncoder

    torch.set_num_threads(1)
    spec = __import__("importlib.util").util.find_spec("resemblyzer")
    weights = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    result = {"command": "python -m benchmarks.ge2e_windows", **measure(VoiceEncoder.load(weights))}
    args.out.write_text(json.dumps(result, indent=1))
    for length, r in result["lengths"].items():
        for kind in ("rest", "pair"):
            x = r[kind]
            print(f"{length:>5} s {kind:4}: same p1/p5/p50 {x['same']['p1_p5_p50']}  diff p50/p95/p99 {x['different']['p50_p95_p99']}"
                  f" max {x['different']['max']}  best t {x['best_threshold']} (errors {x['best_error_sum']})  at {x['at']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
