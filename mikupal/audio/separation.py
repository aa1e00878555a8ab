"""Vocal separation with MDX-Net through audio-separator, in chunks, vocals only.

The input is decoded `chunk_seconds` at a time (plus `context_seconds` on each side, trimmed
after separation so chunk edges carry no artefacts), separated, and appended to the outputs as
it goes, so an hour-long video costs the memory of one chunk:

- `vocals.flac`: mono vocals at the dataset rate (full band; 44.1 kHz by default),
- `analysis16k.wav`: the same at 16 kHz, for VAD and ASR,
- optionally `mixture16k.wav`: the unseparated mixture at 16 kHz (the SNR "before").

`kind=none` writes the mixture in place of the vocals.

Model files. A model present in `<models_dir>/mdx/` (or given as an absolute path) never touches
the network: its parameters (dim_f, dim_t, n_fft, compensate, primary stem) come from, in order,
a sidecar `<model>.json`, audio-separator's hash-keyed `mdx_model_data.json` (or `model_data.json`)
next to it, or audio-separator's bundled model data; the Separator then runs from a private
folder holding a link to the model plus exactly the metadata files audio-separator looks up
(`download_checks.json`, `mdx_model_data.json`, `vr_model_data.json`), so none is fetched.
A missing model is downloaded by audio-separator into `<models_dir>/mdx/` unless offline.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import media
from ..config import SeparationConfig
from ..devices import fallback, onnx_session
from ..errors import StageError, UserError
from ..models_dir import is_offline, resolve

MDX_RATE = 44100  # MDX-Net models are trained on 44.1 kHz stereo
ANALYSIS_RATE = media.ANALYSIS_RATE
HASH_BYTES = 10000 * 1024  # audio-separator hashes the last 10,240,000 bytes of a model file
MDX_KEYS = ("compensate", "mdx_dim_f_set", "mdx_dim_t_set", "mdx_n_fft_scale_set", "primary_stem")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- model metadata


def model_hash(path: str | os.PathLike) -> str:
    """The MD5 audio-separator keys model parameters by (whole file if small, else its tail)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size >= HASH_BYTES:
            f.seek(size - HASH_BYTES)
        return hashlib.md5(f.read()).hexdigest()


def _load_json(path: Path) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def find_model_data(model_path: str | os.PathLike) -> Optional[dict[str, Any]]:
    """MDX parameters for a local model file, from local metadata only (None when unknown)."""
    p = Path(model_path)
    for side in (p.with_name(p.name + ".json"), p.with_suffix(".json")):
        data = _load_json(side)
        if data and "mdx_dim_f_set" in data:
            return data
    h = model_hash(p)
    for name in ("mdx_model_data.json", "model_data.json"):
        data = _load_json(p.parent / name)
        if data and isinstance(data.get(h), dict):
            return data[h]
    try:
        from importlib import resources

        with resources.files("audio_separator").joinpath("model-data.json").open(encoding="utf-8") as f:
            bundled = json.load(f).get("mdx_model_data", {})
        if h in bundled:
            return bundled[h]
    except (OSError, ValueError, ModuleNotFoundError):
        pass
    return None


def write_separator_metadata(model_file_dir: str | os.PathLike, model_filename: str, model_data: dict[str, Any], model_hash_value: str) -> None:
    """The JSON files audio-separator 0.47 reads before it would download them, for one local MDX model.

    `download_checks.json` lists the model (so `download_model_files` finds it and, the file being
    present, downloads nothing); `mdx_model_data.json` maps its hash to its parameters;
    `vr_model_data.json` is an empty table (it is opened unconditionally).
    """
    d = Path(model_file_dir)
    d.mkdir(parents=True, exist_ok=True)
    checks = {
        "vr_download_list": {},
        "mdx_download_list": {f"MDX-Net Model: {Path(model_filename).stem}": model_filename},
        "mdx_download_vip_list": {},
        "demucs_download_list": {},
        "mdx23c_download_list": {},
        "mdx23c_download_vip_list": {},
        "roformer_download_list": {},
    }
    missing = [k for k in MDX_KEYS if k not in model_data]
    if missing:
        raise UserError(f"MDX model data for {model_filename} lacks {', '.join(missing)}")
    (d / "download_checks.json").write_text(json.dumps(checks, indent=1))
    (d / "mdx_model_data.json").write_text(json.dumps({model_hash_value: model_data}, indent=1))
    (d / "vr_model_data.json").write_text("{}")


@contextlib.contextmanager
def _without_env(name: str):
    """audio-separator lets AUDIO_SEPARATOR_MODEL_DIR override model_file_dir: keep ours."""
    old = os.environ.pop(name, None)
    try:
        yield
    finally:
        if old is not None:
            os.environ[name] = old


# ---------------------------------------------------------------- resampling


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(src, dst)
    return resample_poly(x, dst // g, src // g, axis=-1).astype(np.float32, copy=False)


# ---------------------------------------------------------------- the separator


class VocalSeparator:
    """Chunked vocals extraction: `separate(input, vocals_out, analysis_out) -> (vocals, analysis)`."""

    def __init__(
        self,
        cfg: SeparationConfig,
        models_dir: str | os.PathLike,
        dataset_rate: int = 44100,
        offline: bool = False,
        num_threads: Optional[int] = None,
        gpu: bool = False,
        require_gpu: bool = False,
    ):
        self.cfg = cfg
        self.gpu = gpu  # the worker holds a GPU: MDX-Net asks for ONNX Runtime's CUDA provider
        self.require_gpu = require_gpu
        self.models_dir = Path(models_dir)
        self.dataset_rate = int(dataset_rate)
        self.offline = offline
        self.num_threads = num_threads if num_threads is not None else max(1, int(cfg.resources.num_cpus))
        self._sep = None
        self._scratch: Optional[Path] = None
        self._vocals_stem = "Vocals"
        self.model_path: Optional[Path] = None

    # ------------------------------------------------------------ model

    @property
    def loaded(self) -> bool:
        return self.cfg.kind == "none" or self._sep is not None

    def load(self) -> None:
        """Load the MDX model once (no-op for kind=none)."""
        if self.loaded:
            return
        self._scratch = Path(tempfile.mkdtemp(prefix="mikupal-sep-"))
        model_file_dir, filename = self._model_location()
        from audio_separator.separator import Separator

        mdx_params = {
            "hop_length": 1024,
            "segment_size": int(self.cfg.segment_size),
            "overlap": float(self.cfg.overlap),
            "batch_size": int(self.cfg.batch_size),
            "enable_denoise": False,
        }
        with _without_env("AUDIO_SEPARATOR_MODEL_DIR"):
            sep = Separator(
                log_level=logging.ERROR,
                model_file_dir=str(model_file_dir),
                output_dir=str(self._scratch / "out"),
                output_format="WAV",
                normalization_threshold=1.0,  # no per-chunk gain: chunks must join seamlessly
                amplification_threshold=0.0,
                output_single_stem="Vocals",
                sample_rate=MDX_RATE,
                use_soundfile=True,
                mdx_params=mdx_params,
            )
        try:
            sep.load_model(filename)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - a bad model is a user problem, said in one line
            raise UserError(f"separation model {self.cfg.model} could not be loaded ({self.model_path}): {type(e).__name__}: {e}") from None
        inst = sep.model_instance
        stems = [s for s in (getattr(inst, "primary_stem_name", None), getattr(inst, "secondary_stem_name", None)) if s]
        vocal = [s for s in stems if s.lower() == "vocals"]
        if not vocal:
            raise UserError(f"separation model {self.cfg.model} has no Vocals stem (stems: {', '.join(stems) or 'unknown'})")
        self._vocals_stem = vocal[0]
        self._open_session(inst)
        self._quiet(inst)
        self._sep = sep

    def _model_location(self) -> tuple[Path, str]:
        """(model_file_dir, filename) for audio-separator; local files get a private, complete folder."""
        path = resolve(self.models_dir / "mdx", self.cfg.model)
        self.model_path = path
        if path.is_file():
            data = find_model_data(path)
            if data is not None:
                private = self._scratch / "models"
                private.mkdir(parents=True, exist_ok=True)
                link = private / path.name
                try:
                    link.symlink_to(path.resolve())
                except OSError:
                    shutil.copyfile(path, link)
                write_separator_metadata(private, path.name, data, model_hash(path))
                return private, path.name
            if is_offline(self.offline):
                raise UserError(
                    f"separation model {path} has no parameters here: put audio-separator's mdx_model_data.json "
                    f"(hash {model_hash(path)}) or a sidecar {path.name}.json next to it, or go online"
                )
            return path.parent, path.name  # audio-separator fetches its metadata tables by hash
        if is_offline(self.offline):
            raise UserError(
                f"separation model missing: {path} (get {self.cfg.model} with audio-separator, "
                f"e.g. `audio-separator --download_model_only -m {self.cfg.model} --model_file_dir {path.parent}`; "
                f"or set MIKUPAL_MODELS_DIR / models_dir=, or separation=none)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.parent, self.cfg.model  # audio-separator downloads model + metadata there

    def _open_session(self, inst) -> None:
        """audio-separator opens its ONNX session with every core, and with the providers it picked
        (CPU, with only a warning in its own log, when onnxruntime has no CUDA): reopen it with our
        share of the cores and the stage's device, and check what it runs on (`devices.py`)."""
        what = f"separation (MDX-Net {self.cfg.model})"
        if getattr(inst, "uses_pytorch_inference", True):  # segment_size != dim_t: onnx2torch on its torch device
            got = str(getattr(inst, "torch_device", "cpu"))
            if self.gpu and not got.startswith("cuda"):
                fallback(what, "cuda", got, "torch sees no CUDA device", self.require_gpu)
            return
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if self.num_threads:
            opts.intra_op_num_threads = int(self.num_threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = onnx_session(inst.model_path, opts, what, gpu=self.gpu, require=self.require_gpu)
        inst.model_run = lambda spek: sess.run(None, {"input": spek.cpu().numpy()})[0]

    @staticmethod
    def _quiet(inst) -> None:
        """No per-chunk progress bars on stderr."""
        try:
            import sys

            from tqdm import tqdm

            mod = sys.modules[type(inst).__module__]
            if getattr(mod, "tqdm", None) is tqdm:
                mod.tqdm = functools.partial(tqdm, disable=True)
        except Exception:  # noqa: BLE001
            pass

    def close(self) -> None:
        self._sep = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __del__(self):  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    # ------------------------------------------------------------ separation

    def _separate_chunk(self, mix: np.ndarray) -> np.ndarray:
        """[2, n] float32 mixture at 44.1 kHz -> [2, n] vocals through the Separator."""
        assert self._sep is not None and self._scratch is not None
        out_dir = self._scratch / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp_in = self._scratch / "chunk.wav"
        # audio-separator scales its primary stem by the input's peak (`demix(mix) * peak`): feed
        # every chunk at peak 1.0 and undo the gain after, so all chunks share one scale.
        peak = float(np.abs(mix).max()) if mix.size else 0.0
        if peak <= 1e-6:
            return np.zeros_like(mix)
        media.write_scratch_wav(tmp_in, mix / peak, MDX_RATE)
        try:
            files = self._sep.separate(str(tmp_in), custom_output_names={self._vocals_stem: "chunk_vocals"})
        except Exception as e:  # noqa: BLE001
            raise StageError("separation_failed", f"{type(e).__name__}: {e}") from e
        if not files:
            raise StageError("separation_failed", "the separator wrote no vocals stem")
        out = Path(files[0])
        out = out if out.is_absolute() else out_dir / out
        voc, sr = media.read_samples(out)
        out.unlink(missing_ok=True)
        tmp_in.unlink(missing_ok=True)
        voc = np.nan_to_num(voc.T, nan=0.0, posinf=0.0, neginf=0.0) * peak
        if sr != MDX_RATE:
            voc = _resample(voc, sr, MDX_RATE)
        n = mix.shape[1]
        if voc.shape[1] < n:
            voc = np.pad(voc, ((0, 0), (0, n - voc.shape[1])))
        return voc[:, :n]

    def separate(
        self,
        input_path: str | os.PathLike,
        out_vocals_path: str | os.PathLike,
        out_analysis_path: str | os.PathLike,
        out_mixture_path: Optional[str | os.PathLike] = None,
    ) -> tuple[str, str]:
        """Write mono vocals at the dataset rate and a 16 kHz copy (and the 16 kHz mixture if asked)."""
        if not self.loaded:
            self.load()
        mdx = self.cfg.kind == "mdx"
        proc_rate = MDX_RATE if mdx else self.dataset_rate
        chunk = float(self.cfg.chunk_seconds)
        ctx = float(self.cfg.context_seconds) if mdx else 0.0
        vocals_fmt = "FLAC" if str(out_vocals_path).lower().endswith(".flac") else "WAV"
        with contextlib.ExitStack() as files:  # each published on success, every one removed on failure
            outs = [
                files.enter_context(media.audio_writer(out_vocals_path, self.dataset_rate, vocals_fmt)),
                files.enter_context(media.audio_writer(out_analysis_path, ANALYSIS_RATE, "WAV")),
            ]
            mix_out = files.enter_context(media.audio_writer(out_mixture_path, ANALYSIS_RATE, "WAV")) if (out_mixture_path and mdx) else None
            i = 0
            while True:
                t0 = i * chunk
                a = max(0.0, t0 - ctx)
                b = t0 + chunk + ctx
                x = media.decode_audio(input_path, a, b, sample_rate=proc_rate, mono=False)
                lead = int(round((t0 - a) * proc_rate))
                if x.shape[1] <= lead:
                    break
                last = x.shape[1] < int(round((b - a) * proc_rate))
                body = int(round((t0 + chunk) * proc_rate)) - int(round(t0 * proc_rate))
                end = x.shape[1] if last else min(x.shape[1], lead + body)
                vocals = self._separate_chunk(x) if mdx else x
                mono = vocals.mean(axis=0)
                for out in outs:
                    self._append(out, mono, proc_rate, lead, end, t0, chunk, last)
                if mix_out is not None:
                    self._append(mix_out, x.mean(axis=0), proc_rate, lead, end, t0, chunk, last)
                del x, vocals, mono
                if last:
                    break
                i += 1
            if outs[0].frames == 0:
                raise StageError("empty_audio", f"{input_path}: no audio samples decoded")
        return str(outs[0].path), str(outs[1].path)

    @staticmethod
    def _append(out: media.AudioAppender, mono: np.ndarray, proc_rate: int, lead: int, end: int, t0: float, chunk: float, last: bool) -> None:
        """Resample the whole chunk (context included), then keep exactly its body at the output rate."""
        r = out.sample_rate
        y = _resample(mono, proc_rate, r)
        s = int(round(lead * r / proc_rate))
        if last:
            e = int(round(end * r / proc_rate))
        else:
            e = s + int(round((t0 + chunk) * r)) - int(round(t0 * r))
        out.write(y[s : min(e, len(y))])


__all__ = ["VocalSeparator", "find_model_data", "model_hash", "write_separator_metadata", "MDX_RATE"]
