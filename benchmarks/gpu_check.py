"""The GPU check: one command for a GPU machine lent for a few minutes.

    python benchmarks/gpu_check.py                 # on the GPU machine, from the repository root
    python benchmarks/gpu_check.py --prepare       # here (full install): rewrites benchmarks/gpu_inputs.npz

It measures every GPU stage that can run on such a machine's image (Python 3.12, torch with CUDA,
onnxruntime, opencv-python-headless, numpy, scipy, pyarrow, pandas; no Ray, faster-whisper or
PyAV, no package registry), on real inputs carried with the repository (`gpu_inputs.npz`, made
by `--prepare` from examples/talking_face.mp4: 25 fps frames, the face crops and MFCCs the vision
stage feeds Light-ASD, GE2E mel windows, 44.1 kHz stereo audio), one call per item and batched:

- Light-ASD (real weights, tests/data/models): 1 s windows of one face, items/s;
- S3FD (random weights: its file is not shipped), frames at the detector's 320 px width;
- GE2E (random weights unless models_dir has them), 1.6 s mel windows;
- MDX-Net of the UVR vocal models' shape (`mdx_net.py`, random weights) with its STFT/ISTFT, in
  torch on the GPU: the stage runs it with onnxruntime-gpu, which a 64 MiB carry cannot hold, so
  this is its stand-in (the same layers; ONNX Runtime's CUDA kernels may differ somewhat);
- DNSMOS only where onnxruntime here has the CUDA provider (else skipped, and said).

For each: items/s, media seconds per second, peak GPU memory, mean GPU utilisation (nvidia-smi,
sampled). Then it combines the batched figures with the CPU stages measured on the project's CPU
machine into a per-GPU throughput for the whole pipeline, and writes benchmarks/results/gpu.json
naming the card. Without CUDA it says so in one line and exits 0. It imports nothing the image
lacks (tests/unit/test_gpu_check.py runs it with Ray, faster-whisper, PyAV and the rest blocked).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "benchmarks" / "gpu_inputs.npz"
RESULT = ROOT / "benchmarks" / "results" / "gpu.json"
LIGHT_ASD = ROOT / "tests" / "data" / "models" / "light-asd" / "pretrain_AVA_CVPR.model"
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: mikupal.nets and benchmarks.mdx_net are pure torch

#: CPU-side work per media second, measured on the project's 2-core CPU machine (core-seconds):
#: what each GPU's share of the CPUs must do beside the GPU (sources in benchmarks/README.md)
CPU_COST = {
    "vision decode 720p30 at 25 fps + YuNet + tracks + crops + MFCC + clip export": 0.174,
    "quality (DNSMOS) on the CPU provider, max_windows 1": 0.04,
    "speaker front end (mel), voice windows": 0.013,
}
#: GPU work per media second that cannot be measured on this image (faster-whisper is absent)
ASSUMED_GPU_S = {"asr: faster-whisper large-v3 batched fp16 (faster-whisper's published figures, ~50x real time)": 0.02}
#: face-seconds Light-ASD scores per media second: one candidate face, <= asd.max_scored_seconds (3 s) of a
#: ~4 s utterance (more with two faces: every frame of each): an upper bound for one face
ASD_FACE_S_PER_MEDIA_S = 0.75
DETECTED_FRAMES_PER_MEDIA_S = 25 / 5  # faces.detect_every 5 at 25 fps


# ---------------------------------------------------------------- inputs (made here, read there)


def prepare() -> None:
    """Real inputs from examples/talking_face.mp4 through mikupal's own decode, tracking, crops and
    features (needs the full install); a few MB, committed so the GPU machine needs nothing else."""
    import cv2
    import numpy as np

    from mikupal import media
    from mikupal.config import compose
    from mikupal.speaker.embed import PARTIAL_FRAMES, mel_frames
    from mikupal.vision.asd import audio_mfcc
    from mikupal.vision.crops import face_crops
    from mikupal.vision.faces import load_face_detector
    from mikupal.vision.track import detect_and_track

    src = ROOT / "examples" / "talking_face.mp4"
    fc = compose([]).faces
    video = media.decode_video(src, 0.0, 10.0, 25.0, fc.work_width, None)
    det = load_face_detector("yunet", ROOT / "tests" / "data" / "models" / "yunet" / "yunet_s_640_640.onnx",
                             score_threshold=fc.score_threshold, input_width=fc.input_width)
    tracks = detect_and_track(det, video.frames, video.scale, fc)
    track = max(tracks, key=lambda t: len(t.frames))
    boxes = np.asarray(track.boxes) * video.scale
    crops = face_crops([video.frames[f] for f in track.frames], boxes)
    audio16 = media.decode_audio(src, 0.0, 10.0, media.ANALYSIS_RATE)
    mfcc = audio_mfcc(audio16)
    mel = mel_frames(audio16)
    starts = range(0, max(1, len(mel) - PARTIAL_FRAMES), 50)
    mels = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts]).astype(np.float32)
    stereo = media.decode_audio(src, 0.0, 10.0, 44100, mono=False)
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1] for f in video.frames[:50]]
    np.savez_compressed(INPUTS, crops=crops, mfcc=mfcc, mels=mels, audio44k=(np.clip(stereo, -1, 1) * 32767).astype("int16"),
                        jpeg_sizes=np.array([len(j) for j in jpegs]), jpegs=np.concatenate(jpegs))
    print(f"wrote {INPUTS} ({INPUTS.stat().st_size / 1e6:.1f} MB): {len(crops)} crops, {len(mels)} mel windows, "
          f"{len(jpegs)} frames {video.frames[0].shape}")


def load_inputs() -> dict:
    import cv2
    import numpy as np

    z = dict(np.load(INPUTS))
    ends = np.cumsum(z["jpeg_sizes"])
    z["frames"] = [cv2.imdecode(z["jpegs"][e - n : e], cv2.IMREAD_COLOR) for e, n in zip(ends, z["jpeg_sizes"])]
    return z


# ---------------------------------------------------------------- measuring


class GpuSampler:
    """Mean GPU utilisation and memory in use, from nvidia-smi every 100 ms (None without it)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                      "-i", os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"],
                                     capture_output=True, text=True, timeout=5).stdout.strip().splitlines()
                util, mem = (float(x) for x in out[0].split(","))
                self.samples.append((util, mem))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=6)

    def summary(self) -> dict:
        if not self.samples:
            return {"gpu_util_pct": None, "gpu_mem_used_mb": None}
        utils = [u for u, _ in self.samples]
        return {"gpu_util_pct": round(sum(utils) / len(utils), 1), "gpu_mem_used_mb": max(m for _, m in self.samples)}


def measure(fn, items_per_call: int, device, seconds: float) -> dict:
    """Calls of `fn` (one batch of `items_per_call` items) for about `seconds` after a warm-up."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    calls, t0 = 0, time.perf_counter()
    with GpuSampler() if device.type == "cuda" else _Null() as sampler:
        while True:
            fn()
            calls += 1
            if calls % 4 == 0 or calls < 4:
                sync()
                if time.perf_counter() - t0 >= seconds:
                    break
        sync()
    wall = time.perf_counter() - t0
    out = {"items_per_call": items_per_call, "calls": calls, "items_per_s": round(calls * items_per_call / wall, 2)}
    if device.type == "cuda":
        out["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out.update(sampler.summary())
    return out


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def stage_runs(inputs: dict, device, quick: bool) -> dict:
    """Per stage: (what one item is, media seconds per item, {batch: fn}) for `measure`."""
    import numpy as np
    import torch

    from benchmarks import mdx_net
    from mikupal.nets.ge2e import Ge2eEncoder
    from mikupal.nets.light_asd import LightASD
    from mikupal.nets.s3fd import S3FD

    runs = {}
    asd = LightASD.from_checkpoint(LIGHT_ASD, device) if LIGHT_ASD.is_file() else LightASD().to(device).eval()
    crops = torch.from_numpy(inputs["crops"]).float().to(device)
    mfcc = torch.from_numpy(inputs["mfcc"]).float().to(device)
    win = 25  # 1 s windows, as the first pass scores them

    def asd_fn(b):
        v = torch.stack([crops[(i * win) % (len(crops) - win):][:win] for i in range(b)])
        a = torch.stack([mfcc[(i * 4 * win) % (len(mfcc) - 4 * win):][: 4 * win] for i in range(b)])
        return lambda: asd.backend(asd.encode_audio(a), asd.encode_visual(v))

    runs["light_asd"] = ("1 s window of one face", 1.0 / ASD_FACE_S_PER_MEDIA_S, asd_fn)

    s3fd = S3FD().to(device).eval()
    frames = [f for f in inputs["frames"]]
    import cv2

    small = np.stack([cv2.resize(f, (0, 0), fx=0.5, fy=0.5) for f in frames]).astype(np.float32)  # 640 -> 320 px
    small = torch.from_numpy(np.ascontiguousarray(small[..., ::-1].transpose(0, 3, 1, 2))).to(device)

    def s3fd_fn(b):
        x = torch.cat([small] * (b // len(small) + 1))[:b]
        return lambda: s3fd(x)

    runs["s3fd"] = ("one frame at 320 px", 1.0 / DETECTED_FRAMES_PER_MEDIA_S, s3fd_fn)

    ge2e = Ge2eEncoder().to(device).eval()
    mels = torch.from_numpy(inputs["mels"]).to(device)

    def ge2e_fn(b):
        x = torch.cat([mels] * (b // len(mels) + 1))[:b]
        return lambda: ge2e(x)

    runs["ge2e"] = ("1.6 s mel window (2 per media second)", 0.5, ge2e_fn)

    mdx = (mdx_net.ConvTDFNet(num_blocks=3, l=1, g=8).eval() if quick else mdx_net.make_net()).to(device)  # quick: the code path
    spectral = mdx_net.Spectral(str(device))
    audio = torch.from_numpy(inputs["audio44k"].astype(np.float32) / 32767).to(device)
    seg = mdx_net.SEGMENT

    def mdx_fn(b):
        wave = torch.stack([torch.nn.functional.pad(audio, (0, max(0, seg - audio.shape[-1])))[:, :seg]] * b)
        return lambda: spectral.istft(mdx(spectral.stft(wave)))

    runs["mdx_net"] = ("one 5.92 s segment (4.44 s of new audio at overlap 0.25)", mdx_net.STEP_SECONDS, mdx_fn)
    return runs


def measure_all(inputs: dict, device, seconds: float, quick: bool) -> dict:
    import torch

    batches = {"light_asd": [1, 8, 32, 128], "s3fd": [1, 8, 32], "ge2e": [1, 16, 64], "mdx_net": [1, 4, 8]}
    if quick:
        batches = {"light_asd": [1, 2], "s3fd": [1], "ge2e": [1, 2], "mdx_net": [1]}
    out = {}
    with torch.inference_mode():
        for name, (item, media_per_item, make) in stage_runs(inputs, device, quick).items():
            rows = []
            for b in batches[name]:
                try:
                    r = measure(make(b), b, device, seconds)
                except torch.cuda.OutOfMemoryError:  # a batch too big for the card: say so, go on
                    torch.cuda.empty_cache()
                    rows.append({"items_per_call": b, "error": "out of GPU memory"})
                    continue
                r["media_s_per_s"] = round(r["items_per_s"] * media_per_item, 2)
                rows.append(r)
                print(f"  {name:9s} batch {b:4d}: {r['items_per_s']:10.1f} items/s  {r['media_s_per_s']:10.1f} media s/s  "
                      f"{r.get('peak_mem_mb', '-')} MB  util {r.get('gpu_util_pct', '-')}%", flush=True)
            ok = [r for r in rows if "error" not in r]
            out[name] = {"item": item, "media_s_per_item": round(media_per_item, 4), "runs": rows,
                         "best": max(ok, key=lambda r: r["items_per_s"]) if ok else None,
                         "speedup_batched": round(max(r["items_per_s"] for r in ok) / ok[0]["items_per_s"], 2) if ok else None}
    out["dnsmos"] = {"skipped": dnsmos_note()}
    return out


def dnsmos_note() -> str:
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        return "onnxruntime is not installed here"
    if "CUDAExecutionProvider" not in providers:
        return f"onnxruntime here has no CUDAExecutionProvider ({', '.join(providers)}): DNSMOS stays on the CPU figure"
    return "onnxruntime has CUDA here, but the DNSMOS files (speechmos wheel) are not carried"


def projection(stages: dict, cores_per_gpu: float) -> dict:
    """Per-GPU real-time factor of the whole pipeline: the GPU bound (measured batched GPU-seconds
    per media second of each GPU stage, plus what is assumed) against the CPU bound (the CPU work
    per media second over each GPU's cores). The smaller is the pipeline's."""
    gpu_s = {}
    for name, what in (("mdx_net", "separation (MDX-Net shape, torch)"), ("light_asd", "asd (Light-ASD)"),
                       ("ge2e", "speaker (GE2E)")):
        best = stages.get(name, {}).get("best")
        if best and best["media_s_per_s"] > 0:
            gpu_s[what] = round(1.0 / best["media_s_per_s"], 5)
    gpu_s.update(ASSUMED_GPU_S)
    gpu_total = sum(gpu_s.values())
    cpu_total = sum(CPU_COST.values())
    gpu_bound, cpu_bound = 1.0 / gpu_total, cores_per_gpu / cpu_total
    return {"gpu_s_per_media_s": gpu_s, "gpu_s_total": round(gpu_total, 5), "gpu_bound_x_real_time": round(gpu_bound, 1),
            "cpu_core_s_per_media_s": CPU_COST, "cores_per_gpu": cores_per_gpu, "cpu_bound_x_real_time": round(cpu_bound, 1),
            "per_gpu_x_real_time": round(min(gpu_bound, cpu_bound), 1),
            "bound_by": "GPU" if gpu_bound < cpu_bound else "CPU"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the GPU check: per-stage GPU figures and the per-GPU projection")
    ap.add_argument("--prepare", action="store_true", help="make benchmarks/gpu_inputs.npz (here, full install)")
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per stage and batch size")
    ap.add_argument("--self-test", action="store_true", help="run every measurement on the CPU, tiny (import and code check)")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)
    if args.prepare:
        prepare()
        return 0
    t0 = time.perf_counter()
    import torch

    if not torch.cuda.is_available() and not args.self_test:
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, CUDA build {torch.version.cuda}): nothing measured")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() and not args.self_test else "cpu")
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (self-test)"
    print(f"gpu_check on {card}, torch {torch.__version__} (CUDA {torch.version.cuda})", flush=True)
    stages = measure_all(load_inputs(), device, 0.2 if args.self_test else args.seconds, quick=args.self_test)
    gpus = max(1, torch.cuda.device_count()) if device.type == "cuda" else 1
    result = {
        "card": card, "gpus": gpus, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S"), "command": "python benchmarks/gpu_check.py "
        + " ".join(sys.argv[1:] if argv is None else argv), "stages": stages,
        "projection_this_machine": projection(stages, (os.cpu_count() or 1) / gpus),
        "projection_4_cores_per_gpu": projection(stages, 4.0),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if not args.self_test or args.out != RESULT:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    p = result["projection_this_machine"]
    print(f"per GPU: {p['per_gpu_x_real_time']}x real time ({p['bound_by']}-bound: GPU {p['gpu_bound_x_real_time']}x, "
          f"CPU {p['cpu_bound_x_real_time']}x with {p['cores_per_gpu']:g} cores); wrote {args.out} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
