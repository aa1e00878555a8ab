"""Cost of the quality stage: DNSMOS CPU seconds per media second, by utterance length.

Input: the real talks in ../shared/media (jfk.flac and the five vr_face clips' audio), decoded
once to 16 kHz and joined, cut into utterances of each length and scored with one ONNX Runtime
thread (what one Ray quality worker gets), with all of the reference's windows and with the default
`quality.max_windows`, and how far apart the two OVRL scores are. Utterances shorter
than 9.01 s are doubled until they fill a window, as the reference does, and windows start every
second, so the cost per media second depends on the length. CPU seconds are the process's
(user + system) around the scoring, decoding excluded.

    python -m benchmarks.quality            # -> benchmarks/results/quality.json, benchmarks/quality.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mikupal import media  # noqa: E402
from mikupal.audio.quality import SAMPLE_RATE, Dnsmos, windows  # noqa: E402
from mikupal.config import compose  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
LENGTHS = (2.0, 3.0, 4.0, 4.5, 5.0, 6.0, 9.01, 12.0, 15.0)
CUTS_PER_LENGTH = 4
DEFAULT_WINDOWS = compose([]).quality.max_windows
MODES = (None, DEFAULT_WINDOWS)  # all of the reference's windows; the default quality.max_windows
KEY = f"max{DEFAULT_WINDOWS}"


def talks() -> np.ndarray:
    files = [MEDIA / "jfk.flac", *sorted(MEDIA.glob("vr_face*.mp4"))]
    return np.clip(np.concatenate([media.decode_audio(f, 0.0, None, SAMPLE_RATE) for f in files]), -1, 1)


def cuts_of(audio: np.ndarray, seconds: float) -> list[np.ndarray]:
    """CUTS_PER_LENGTH utterances of `seconds`, spread over the talks."""
    n = int(seconds * SAMPLE_RATE)
    starts = np.linspace(0, len(audio) - n, CUTS_PER_LENGTH).astype(int)
    return [audio[s : s + n] for s in starts]


def measure(scorer: Dnsmos, audio: np.ndarray, seconds: float) -> dict:
    cuts = cuts_of(audio, seconds)
    row: dict = {"utterance_s": seconds, "utterances": len(cuts),
                 "reference_windows": len(windows(cuts[0]))}
    ovrl = {}
    for mode in MODES:
        cpu0 = time.process_time()
        ovrl[mode] = [scorer.score(c, max_windows=mode).ovrl for c in cuts]
        cpu = time.process_time() - cpu0
        key = "all" if mode is None else f"max{mode}"
        row[f"cpu_s_per_media_s_{key}"] = round(cpu / (len(cuts) * seconds), 4)
    err = [abs(a - b) for a, b in zip(ovrl[None], ovrl[DEFAULT_WINDOWS])]
    row[f"ovrl_abs_err_{KEY}_mean"], row[f"ovrl_abs_err_{KEY}_max"] = round(float(np.mean(err)), 4), round(float(np.max(err)), 4)
    return row


def write_markdown(result: dict, path: Path) -> None:
    lines = [
        "# Quality stage cost (DNSMOS)", "",
        f"Measured {result['when']} on {result['machine']}, one ONNX Runtime thread, {CUTS_PER_LENGTH} utterances "
        f"per length cut from {result['input_s']:.1f} s of real talks (jfk.flac + vr_face1-5), via `{result['command']}`. "
        "CPU s are the process's around the scoring (decoding excluded).", "",
        f"| utterance (s) | reference windows | CPU s per media s, all windows | CPU s per media s, max_windows={DEFAULT_WINDOWS} "
        f"(default) | OVRL error of max_windows={DEFAULT_WINDOWS}, mean / max |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['utterance_s']} | {r['reference_windows']} | {r['cpu_s_per_media_s_all']} | "
                     f"**{r[f'cpu_s_per_media_s_{KEY}']}** | {r[f'ovrl_abs_err_{KEY}_mean']} / {r[f'ovrl_abs_err_{KEY}_max']} |")
    lines += ["", "P.835 is most of the cost: four full-resolution 3x3 convolutions over a window's 900 frames "
              "(about 38 GFLOP, 0.22 CPU s on one core at this machine's full AVX-512 rate). The reference's rule sets "
              "how many windows: a signal shorter than 9.01 s is doubled until it is not (4 s -> 16 s), then a window "
              "starts every second (`floor(len - 9.01) + 1`), so a 4 s utterance has 7 windows of circularly shifted "
              "copies of itself, a 5 s one 1, a 15 s one 6. Those layers' output at a frame depends only on the 4 "
              "frames either side, so `mikupal/audio/p835.py` computes them once per distinct frame: once over the "
              "union of overlapping windows, and, for a repeated utterance whose length is a whole number of 10 ms "
              "frames, over one period (its own length) and copies it; only each window's first and last 4 frames "
              "are computed apart. The scores are the whole model's, and all of a short utterance's windows share "
              f"one period's work (the all-windows column). For an utterance shorter than one window the stage scores at most "
              f"`quality.max_windows` ({DEFAULT_WINDOWS}) of them, evenly spaced; a longer one on at least its first "
              "and last. The error column is the distance from the mean of all windows. `quality.max_windows=null` "
              "gives the reference's numbers exactly.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    audio = talks()
    scorer = Dnsmos(threads=1)
    scorer.score(audio[: 3 * SAMPLE_RATE])  # warm-up: first-run allocations
    rows = [measure(scorer, audio, s) for s in LENGTHS]
    result = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "input_s": len(audio) / SAMPLE_RATE, "command": "python -m benchmarks.quality", "rows": rows}
    out = ROOT / "benchmarks" / "results" / "quality.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    write_markdown(result, ROOT / "benchmarks" / "quality.md")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
