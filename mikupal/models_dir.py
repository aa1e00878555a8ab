"""Where model weights come from: one folder laid out by kind, else the official source.

<models_dir>/whisper/<name>/        CTranslate2 dirs (faster-whisper)
<models_dir>/light-asd/pretrain_AVA_CVPR.model, lr-asd/pretrain_AVA.model, talknet/pretrain_TalkSet.model
<models_dir>/yunet/yunet_s_640_640.onnx, s3fd/sfd_face.pth
<models_dir>/ge2e/pretrained.pt     GE2E voice encoder (Resemblyzer's weights)
<models_dir>/mdx/<model file> + audio-separator's JSON metadata

A file present there is used with no network access, once it passes `model_check.problem` (not
an HTML page, not truncated, the published size and sha256 where the source names them). A missing
one is downloaded from its official source when allowed, checked the same way before it takes its
place (written atomically); otherwise one clear line names the file and where to get it.

Each stage says which files it needs (`Stage.models(cfg)`, built with the helpers here); the
stage's `preflight` resolves them before any worker starts (`ensure`).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

from . import atomic
from .errors import UserError
from .model_check import Format, Published, problem

# Official sources of the files we know by name (None: the user must supply it).
OFFICIAL_SOURCES: dict[str, Optional[str]] = {
    "yunet/yunet_s_640_640.onnx": "https://github.com/ShiqiYu/libfacedetection.train/raw/master/onnx/yunet_s_640_640.onnx",
    "light-asd/pretrain_AVA_CVPR.model": "https://github.com/Junhua-Liao/Light-ASD/raw/main/weight/pretrain_AVA_CVPR.model",
    "lr-asd/pretrain_AVA.model": "https://github.com/Junhua-Liao/LR-ASD/raw/main/weight/pretrain_AVA.model",
    "ge2e/pretrained.pt": "https://github.com/resemble-ai/Resemblyzer/raw/master/resemblyzer/pretrained.pt",
    "talknet/pretrain_TalkSet.model": None,
    "s3fd/sfd_face.pth": None,
}

#: size and sha256 of the files at OFFICIAL_SOURCES (the releases our tests run), checked after a
#: download and before a run
PUBLISHED: dict[str, Published] = {
    "yunet/yunet_s_640_640.onnx": Published(232589, "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"),
    "light-asd/pretrain_AVA_CVPR.model": Published(4175289, "d44bc3ea7baa8e0946fa3921311714a630ed8b90a1928fab0dbe30d918909317"),
    "lr-asd/pretrain_AVA.model": Published(3426337, "85e6c77fc981595234790d1e128ebb60352d37726b2445e0ef8891e2512fe9e3"),
    "ge2e/pretrained.pt": Published(17090379, "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"),
}

#: DNSMOS (audio/quality.py): the ONNX files the PyPI wheel `speechmos` ships, else from the reference repository
DNSMOS_P835 = "sig_bak_ovr.onnx"
DNSMOS_P808 = "model_v8.onnx"
DNSMOS_SOURCE = "https://github.com/microsoft/DNS-Challenge/tree/master/DNSMOS/DNSMOS"

MANUAL_HINTS = {
    "talknet/pretrain_TalkSet.model": "download pretrain_TalkSet.model from the TalkNet-ASD project page (TaoRuijie/TalkNet-ASD)",
    "s3fd/sfd_face.pth": "download sfd_face.pth from the S3FD project (e.g. the TalkNet-ASD demo's faceDetector/s3fd)",
}


def is_offline(offline_flag: bool = False) -> bool:
    return offline_flag or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True") or os.environ.get("MIKUPAL_OFFLINE", "") in ("1", "true")


@dataclass
class ModelNeed:
    """One model file (or CTranslate2 dir) a configured stage loads: where it is, what format,
    and where it comes from."""

    component: str  # the config section that names it: asr, separation, speaker, faces, asd, quality
    name: str  # as the config names it
    path: Path
    fmt: Format
    source: str  # where to get it, for the user
    url: Optional[str] = None  # downloadable from here (None: by its library, or by hand)
    published: Optional[Published] = None


@dataclass
class ModelStatus:
    """A need, checked: `state` is present, missing or broken (`problem` says why)."""

    need: ModelNeed
    state: str
    problem: Optional[str] = None

    @property
    def present(self) -> bool:
        return self.state == "present"


def resolve(models_dir: str | os.PathLike, rel: str) -> Path:
    """A config path: absolute as given, else relative to the models folder."""
    p = Path(os.path.expanduser(rel))
    return p if p.is_absolute() else Path(models_dir) / rel


def file_need(component: str, models_dir: str | os.PathLike, rel: str, fmt: Format) -> ModelNeed:
    """A weight file named relative to the models folder (or absolute); official facts by its name."""
    url = OFFICIAL_SOURCES.get(rel)
    return ModelNeed(component, rel, resolve(models_dir, rel), fmt, url or MANUAL_HINTS.get(rel, "user supplied"), url, PUBLISHED.get(rel))


def whisper_need(models_dir: str | os.PathLike, name: str, component: str = "asr") -> ModelNeed:
    as_path = Path(os.path.expanduser(name))
    local = as_path if as_path.is_dir() else Path(models_dir) / "whisper" / name
    return ModelNeed(component, name, local, "ctranslate2", f"Hugging Face hub (Systran/faster-whisper-{name})")


def mdx_need(models_dir: str | os.PathLike, model: str) -> ModelNeed:
    return ModelNeed("separation", model, resolve(Path(models_dir) / "mdx", model), "onnx", "audio-separator model repository")


def dnsmos_needs(model_dir: Optional[str]) -> list[ModelNeed]:
    d = Path(os.path.expanduser(model_dir)) if model_dir else dnsmos_dir() or Path("speechmos") / "dnsmos_models"
    return [ModelNeed("quality", f"dnsmos {name}", d / name, "onnx", f"PyPI speechmos wheel ({DNSMOS_SOURCE})")
            for name in (DNSMOS_P835, DNSMOS_P808)]


def check(need: ModelNeed, load: bool = False) -> ModelStatus:
    """present, missing or broken (`model_check.problem`; with `load`, also loaded as its runtime does)."""
    exists = need.path.is_dir() if need.fmt == "ctranslate2" else need.path.is_file()
    if not exists:
        return ModelStatus(need, "missing")
    found = problem(need.path, need.fmt, need.published, load=load)
    return ModelStatus(need, "broken", found) if found else ModelStatus(need, "present")


def broken_error(status: ModelStatus) -> UserError:
    need = status.need
    fix = f"delete it to download it again from {need.url}" if need.url else f"replace it: {need.source}"
    return UserError(f"{need.component} model file broken: {need.path}: {status.problem}; {fix}")


def ensure(need: ModelNeed, models_dir: str | os.PathLike, offline: bool = False) -> Path:
    """The need resolved before any worker starts: present and whole, downloaded now when it may
    be, else a one-line UserError naming the file, the models dir and where to get it."""
    st = check(need)
    if st.state == "broken":
        raise broken_error(st)
    if st.present:
        return need.path
    if need.fmt == "ctranslate2":  # a whisper (ASR, language ID)
        whisper_model(models_dir, need.name, offline=offline)  # offline: the one-line UserError
        _download_whisper(need.name, models_dir)
    elif need.component == "separation":
        if is_offline(offline):
            raise UserError(
                f"separation model missing: {need.path} (models dir {models_dir}; get {need.name} with "
                f"`audio-separator --download_model_only -m {need.name} --model_file_dir {need.path.parent}`, "
                "or separation=none)"
            )  # online, audio-separator downloads it into the models dir itself
    elif need.component == "quality":
        raise UserError(
            f"DNSMOS model missing: {need.path}: pip install speechmos, or set quality.model_dir= to a folder with "
            f"{DNSMOS_P835} and {DNSMOS_P808} (from {DNSMOS_SOURCE}), or quality.kind=none"
        )
    else:
        return ensure_file(models_dir, need.name, offline=offline, fmt=need.fmt)
    return need.path


def ensure_file(models_dir: str | os.PathLike, rel: str, offline: bool = False, fmt: Format = "torch") -> Path:
    """The local path of a weight file, downloading it from its official source if allowed."""
    path = resolve(models_dir, rel)
    if path.is_file():
        return path
    url = OFFICIAL_SOURCES.get(rel)
    if url is None or is_offline(offline):
        where = url or MANUAL_HINTS.get(rel, "its project page")
        raise UserError(f"model file missing: {path} (get it from {where}; set MIKUPAL_MODELS_DIR or models_dir=)")
    download(url, path, fmt, PUBLISHED.get(rel))
    return path


def download(url: str, path: Path, fmt: Format, published: Optional[Published] = None, timeout: float = 60) -> None:
    """Fetch `url` into `path`: every byte the server announced, the published size and sha256
    when known, and a file of the right format (`model_check.problem`), checked before it is
    renamed into place; on any failure nothing is left at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, atomic.replacing(path, unique=True) as tmp:
            with open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            announced = r.headers.get("Content-Length")
            got = tmp.stat().st_size
            if announced is not None and announced.isdigit() and int(announced) != got:
                raise _BadDownload(f"got {got} of the {announced} bytes announced")
            found = problem(tmp, fmt, published)
            if found:
                raise _BadDownload(found)
    except _BadDownload as e:
        raise UserError(f"model download from {url} failed its check: {e}; nothing was written to {path}") from None
    except OSError as e:
        raise UserError(f"model file missing: {path} and the download from {url} failed ({e})") from None


class _BadDownload(Exception):
    pass


def dnsmos_dir() -> Optional[Path]:
    """The `dnsmos_models` folder of the installed `speechmos` wheel, or None without it."""
    try:
        root = resources.files("speechmos")
    except ModuleNotFoundError:
        return None
    path = Path(str(root)) / "dnsmos_models"
    return path if (path / DNSMOS_P835).is_file() else None


def whisper_model(models_dir: str | os.PathLike, name: str, offline: bool = False) -> str:
    """A faster-whisper model argument: a local CTranslate2 dir when we have one, else the name to download."""
    as_path = Path(os.path.expanduser(name))
    if as_path.is_dir():
        return str(as_path)
    local = Path(models_dir) / "whisper" / name
    if (local / "model.bin").is_file():
        return str(local)
    if is_offline(offline):
        raise UserError(
            f"whisper model '{name}' missing: put its CTranslate2 files in {local} "
            f"(e.g. from the Hugging Face repo Systran/faster-whisper-{name}) or go online"
        )
    return name  # faster-whisper downloads it from the Hugging Face hub


def present_files(models_dir: str | os.PathLike) -> list[Path]:
    """Every model file or whisper dir in the models folder (what `mikupal models` lists), sorted."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [d for d in sorted((root / "whisper").glob("*")) if (d / "model.bin").is_file()]
    for kind in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "whisper"):
        found += sorted(f for f in kind.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
    return found


#: what a weight file's name ends with (LICENSE and JSON metadata beside it are not listed)
WEIGHT_SUFFIXES = {".onnx", ".pt", ".pth", ".model", ".ckpt", ".bin", ".safetensors"}


def format_of(path: Path) -> Format:
    if path.is_dir():
        return "ctranslate2"
    return "onnx" if path.suffix == ".onnx" else "torch"


def english_only(name: str) -> bool:
    """Whisper's English-only models are named `*.en` (tiny.en, distil-small.en ...)."""
    return Path(os.path.expanduser(name)).name.endswith(".en")


def whisper_models(cfg) -> list[tuple[str, str]]:
    """(component, name) of each whisper the run loads: the ASR model, and the multilingual one
    that checks the spoken language for an English-only model (audio/language_id.py)."""
    out = [("asr", cfg.asr.model)]
    if english_only(cfg.asr.model) and cfg.asr.language_id_model:
        out.append(("language_id", cfg.asr.language_id_model))
    return out


def _download_whisper(name: str, models_dir: str | os.PathLike) -> None:
    """A whisper model by name, into the Hugging Face cache faster-whisper reads (online only).
    huggingface_hub checks each file's size against the hub's metadata and renames it into the
    cache only when complete; the CTranslate2 check then walks the model's variables."""
    if Path(os.path.expanduser(name)).is_dir():
        return
    try:
        from faster_whisper.utils import download_model

        where = download_model(name)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types; each is the same user problem
        raise UserError(
            f"whisper model '{name}' could not be downloaded ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            f"put its CTranslate2 files in {Path(models_dir) / 'whisper' / name} (Hugging Face repo "
            f"Systran/faster-whisper-{name}) and set MIKUPAL_MODELS_DIR, or go online"
        ) from None
    found = problem(where, "ctranslate2")
    if found:
        raise UserError(f"whisper model '{name}' downloaded to {where} is broken: {found}; delete that folder and re-run")
