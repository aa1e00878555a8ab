"""How much two busy processes get out of this machine's cores, against one: the ceiling on any
parallel speed-up here, whatever the engine.

Three kinds of single-threaded work, each run alone and then as two copies side by side:
  * float32 matrix products (numpy, one BLAS thread): SIMD-heavy, like ASD, whisper and the decoders;
  * H.264 720p decoding (ffmpeg -threads 1) of the benchmark input;
  * a pure-Python loop (integer unit only).
Throughput gain = 2 x (time alone) / (time of the pair). On two independent cores it is ~2.0; on two
hyper-threads of one core (what many cloud vCPUs are) SIMD work gains little.

    python -m benchmarks.cpu_scaling      # -> results/cpu_scaling.json
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def matmul(reps: int = 2500) -> None:
    import numpy as np

    a = np.random.default_rng(0).random((300, 300), dtype=np.float32)
    for _ in range(reps):
        a = a @ a
        a /= np.abs(a).max()


def python_loop(n: int = 15_000_000) -> None:
    x = 0
    for i in range(n):
        x += i * i


def decode(path: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-t", "60", "-i", path, "-map", "0:v:0",
                    "-f", "null", "-"], check=True)


def _timed(fn, args, copies: int) -> float:
    ctx = get_context("spawn")
    procs = [ctx.Process(target=fn, args=args) for _ in range(copies)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - t0


def main() -> int:
    from benchmarks.inputs import long_input
    from benchmarks.pipeline import machine, save

    work = {"float32 matmul (numpy, 1 thread)": (matmul, ()), "H.264 720p decode (ffmpeg -threads 1)":
            (decode, (str(long_input(5)),)), "pure-Python loop": (python_loop, ())}
    rows = []
    for name, (fn, args) in work.items():
        one = min(_timed(fn, args, 1) for _ in range(2))
        two = min(_timed(fn, args, 2) for _ in range(2))
        rows.append({"work": name, "one_s": round(one, 2), "two_s": round(two, 2), "throughput_gain": round(2 * one / two, 2)})
        print(rows[-1], flush=True)
    save("cpu_scaling", {"rows": rows, "cpus": os.cpu_count(), "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
