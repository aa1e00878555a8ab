"""How alike GE2E says two stretches of one voice are, and two voices are, by stretch length.

The figures behind `speaker.cluster_similarity`, `speaker.attach_similarity`, `speaker.min_support_seconds`
and `speaker.global_similarity` (conf/speaker/ge2e.yaml), and behind the synthetic voices of
`benchmarks.identity_scale`. Real voices: the five talking-face clips, jfk.flac, the 60 s
silero test file and the left channel of the stereo diarization file (8 people, one each).

Each voice is cut into pieces of L seconds (every 0.5 s), and each piece is embedded as the
pipeline embeds a segment (1.5 s windows every 0.5 s, the mean of its speech windows). Then:

* `own`: a piece against its own speaker's voice from the rest of the recording (the windows that do
  not overlap it): what a short piece meets when it is compared with a well-supported speaker;
* `own_pair`: two pieces of one voice that do not overlap (what average linkage compares);
* `other`: a piece against another speaker's whole voice; `other_pair`: pieces of two voices.

    python -m benchmarks.voice_similarity    # writes benchmarks/results/voice_similarity.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from .inputs import ROOT, SHARED

RESULTS = ROOT / "benchmarks" / "results"
LENGTHS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
HOP = 0.5


def voices() -> dict[str, np.ndarray]:
    """16 kHz mono speech of one person each."""
    import soundfile as sf

    from mikupal import media

    out = {f"vr_face{i}": media.decode_audio(SHARED / f"vr_face{i}.mp4") for i in range(1, 6)}
    out["jfk"] = media.decode_audio(SHARED / "jfk.flac")
    out["silero"] = media.decode_audio(SHARED / "silero_test.wav")
    stereo, rate = sf.read(SHARED / "fw_stereo_diarization.wav", dtype="float32")
    out["stereo_left"] = stereo[: int(4.9 * rate), 0]  # one voice on the left channel (the right one has ~2 s)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(1e-12, float(np.linalg.norm(x)))


def pieces(encoder, audio: np.ndarray, length: float) -> list[tuple[float, np.ndarray]]:
    """(start, voice) of each L-second piece, embedded as a segment is."""
    from mikupal.speaker.embed import SAMPLE_RATE, mean_voice, windows_record

    out = []
    for t in np.arange(0.0, len(audio) / SAMPLE_RATE - length + 1e-6, HOP):
        a = audio[int(t * SAMPLE_RATE) : int((t + length) * SAMPLE_RATE)]
        w = windows_record(encoder.embed_windows(a), 0.0)
        if any(w.speech):
            out.append((float(t), np.asarray(mean_voice(w))))
    return out


THRESHOLDS = (0.65, 0.70, 0.75, 0.80)


def _stats(x: list[float], same: bool = True) -> dict:
    """Percentiles, and the share on the wrong side of each threshold: below it for one voice
    (`same`: it would not join), at or above it for two (it would)."""
    if not x:
        return {"n": 0}
    a = np.asarray(x)
    q = {f"p{p}": round(float(np.percentile(a, p)), 4) for p in (1, 5, 10, 25, 50, 75, 95, 99)}
    wrong = {f"{'below' if same else 'at_or_above'}_{t}": round(float(np.mean(a < t if same else a >= t)), 4) for t in THRESHOLDS}
    return {"n": len(a), "mean": round(float(a.mean()), 4), "sd": round(float(a.std()), 4), "min": round(float(a.min()), 4),
            "max": round(float(a.max()), 4), **q, **wrong}


def measure(encoder) -> dict:
    import torch

    torch.set_num_threads(1)  # one core: the figures, not the speed, are the point
    from mikupal.speaker.embed import windows_record

    audio = voices()
    whole = {}  # name -> (window starts, ends, embeddings, speech)
    centre = {}
    for name, a in audio.items():
        w = windows_record(encoder.embed_windows(a), 0.0)
        whole[name] = (np.asarray(w.starts), np.asarray(w.ends), np.asarray(w.embeddings), np.asarray(w.speech))
        st, en, e, sp = whole[name]
        centre[name] = _unit(e[sp].mean(axis=0))
    by_length = {}
    for length in LENGTHS:
        own, own_pair, other, other_pair = [], [], [], []
        ps = {n: pieces(encoder, a, length) for n, a in audio.items()}
        for name, mine in ps.items():
            st, en, e, sp = whole[name]
            for t, v in mine:
                rest = sp & ((en <= t) | (st >= t + length))  # windows clear of the piece
                if rest.sum() >= 3:
                    own.append(float(v @ _unit(e[rest].mean(axis=0))))
                other += [float(v @ centre[o]) for o in centre if o != name]
            own_pair += [float(a @ b) for (s, a), (u, b) in itertools.combinations(mine, 2) if abs(s - u) >= length]
        for x, y in itertools.combinations(ps, 2):
            other_pair += [float(a @ b) for _, a in ps[x][::2] for _, b in ps[y][::2]]
        by_length[str(length)] = {"own": _stats(own), "own_pair": _stats(own_pair), "other": _stats(other, same=False),
                                  "other_pair": _stats(other_pair, same=False)}
        print(f"{length:>4} s  own p5 {by_length[str(length)]['own'].get('p5')}  other max {by_length[str(length)]['other'].get('max')}"
              f"  own_pair p5 {by_length[str(length)]['own_pair'].get('p5')}  other_pair p99 {by_length[str(length)]['other_pair'].get('p99')}",
              flush=True)
    names = sorted(centre)
    between = [float(centre[a] @ centre[b]) for a, b in itertools.combinations(names, 2)]
    return {"voices": {n: round(len(a) / 16000, 2) for n, a in audio.items()}, "by_length": by_length,
            "between_whole_voices": _stats(between, same=False),
            "whole_voice_matrix": {a: {b: round(float(centre[a] @ centre[b]), 3) for b in names} for a in names},
            "mean_voice_norm_of_all": round(float(np.linalg.norm(np.mean([centre[n] for n in names], axis=0))), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS / "voice_similarity.json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from audio_fixtures import ge2e_weights

    from mikupal.speaker.embed import VoiceEncoder

    weights = ge2e_weights()
    if weights is None:
        raise SystemExit("GE2E weights absent: pip install --no-deps resemblyzer")
    result = {"command": "python -m benchmarks.voice_similarity", **measure(VoiceEncoder.load(weights))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
