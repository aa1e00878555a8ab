"""Where model weights come from: one folder laid out by kind, else the official source.

<models_dir>/whisper/<name>/        CTranslate2 dirs (faster-whisper)
<models_dir>/light-asd/pretrain_AVA_CVPR.model, lr-asd/pretrain_AVA.model, talknet/pretrain_TalkSet.model
<models_dir>/yunet/yunet_s_640_640.onnx, s3fd/sfd_face.pth
<models_dir>/ge2e/pretrained.pt     GE2E voice encoder (Resemblyzer's weights)
<models_dir>/mdx/<model file> + audio-separator's JSON metadata

A file present there is used with no network access. A missing one is downloaded from its
official source when allowed; otherwise one clear line names the file and where to get it.
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

# Official sources of the files we know by name (None: the user must supply it).
OFFICIAL_SOURCES: dict[str, Optional[str]] = {
    "yunet/yunet_s_640_640.onnx": "https://github.com/ShiqiYu/libfacedetection.train/raw/master/onnx/yunet_s_640_640.onnx",
    "light-asd/pretrain_AVA_CVPR.model": "https://github.com/Junhua-Liao/Light-ASD/raw/main/weight/pretrain_AVA_CVPR.model",
    "lr-asd/pretrain_AVA.model": "https://github.com/Junhua-Liao/LR-ASD/raw/main/weight/pretrain_AVA.model",
    "ge2e/pretrained.pt": "https://github.com/resemble-ai/Resemblyzer/raw/master/resemblyzer/pretrained.pt",
    "talknet/pretrain_TalkSet.model": None,
    "s3fd/sfd_face.pth": None,
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
class ModelStatus:
    component: str
    name: str
    path: str
    present: bool
    source: str


def resolve(models_dir: str | os.PathLike, rel: str) -> Path:
    """A config path: absolute as given, else relative to the models folder."""
    p = Path(os.path.expanduser(rel))
    return p if p.is_absolute() else Path(models_dir) / rel


def ensure_file(models_dir: str | os.PathLike, rel: str, offline: bool = False) -> Path:
    """The local path of a weight file, downloading it from its official source if allowed."""
    path = resolve(models_dir, rel)
    if path.is_file():
        return path
    url = OFFICIAL_SOURCES.get(rel)
    if url is None or is_offline(offline):
        where = url or MANUAL_HINTS.get(rel, "its project page")
        raise UserError(f"model file missing: {path} (get it from {where}; set MIKUPAL_MODELS_DIR or models_dir=)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, atomic.replacing(path, unique=True) as tmp, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        raise UserError(f"model file missing: {path} and the download from {url} failed ({e})") from None
    return path


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


def status(cfg) -> list[ModelStatus]:
    """What the configured run needs, and whether each file is here."""
    md = cfg.models_dir
    out: list[ModelStatus] = []

    def file_entry(component: str, rel: str) -> None:
        path = resolve(md, rel)
        src = OFFICIAL_SOURCES.get(rel) or MANUAL_HINTS.get(rel, "user supplied")
        out.append(ModelStatus(component, rel, str(path), path.is_file(), src))

    for component, name in whisper_models(cfg):
        wpath = Path(os.path.expanduser(name))
        local = wpath if wpath.is_dir() else Path(md) / "whisper" / name
        out.append(ModelStatus(component, name, str(local), (local / "model.bin").is_file(), "Hugging Face hub (faster-whisper)"))
    if cfg.separation.kind == "mdx":
        mp = resolve(Path(md) / "mdx", cfg.separation.model)
        out.append(ModelStatus("separation", cfg.separation.model, str(mp), mp.is_file(), "audio-separator model repository"))
    if cfg.speaker.kind != "none":
        file_entry("speaker", cfg.speaker.model)
    file_entry("faces", cfg.faces.model)
    file_entry("asd", cfg.asd.model)
    if cfg.quality.kind == "dnsmos":
        qdir = Path(os.path.expanduser(cfg.quality.model_dir)) if cfg.quality.model_dir else dnsmos_dir()
        qpath = (qdir / DNSMOS_P835) if qdir else Path("speechmos") / "dnsmos_models" / DNSMOS_P835
        out.append(ModelStatus("quality", "dnsmos", str(qpath), qpath.is_file(), f"PyPI speechmos wheel ({DNSMOS_SOURCE})"))
    return out


def preflight(cfg) -> list[ModelStatus]:
    """Every model file the configured run needs, resolved before any worker starts: present, or
    fetched now when online. A missing one is a one-line UserError naming the file, the models dir
    and where to get it, instead of a failure inside a stage actor minutes later."""
    md = cfg.models_dir
    offline = is_offline(cfg.offline)
    rows = status(cfg)
    for r in rows:
        if r.present:
            continue
        if r.component in ("asr", "language_id"):
            if offline:
                whisper_model(md, r.name, offline=True)  # raises the one-line UserError
            _download_whisper(r.name, md)
        elif r.component == "separation":
            if offline:
                raise UserError(
                    f"separation model missing: {r.path} (models dir {md}; get {cfg.separation.model} with "
                    f"`audio-separator --download_model_only -m {cfg.separation.model} --model_file_dir {Path(r.path).parent}`, "
                    "or separation=none)"
                )  # online, audio-separator downloads it into the models dir itself
        else:
            ensure_file(md, r.name, offline=offline)  # downloads it now, or raises the one-line UserError
    return rows


def _download_whisper(name: str, models_dir: str | os.PathLike) -> None:
    """A whisper model by name, into the Hugging Face cache faster-whisper reads (online only)."""
    if Path(os.path.expanduser(name)).is_dir():
        return
    try:
        from faster_whisper.utils import download_model

        download_model(name)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types; each is the same user problem
        raise UserError(
            f"whisper model '{name}' could not be downloaded ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            f"put its CTranslate2 files in {Path(models_dir) / 'whisper' / name} (Hugging Face repo "
            f"Systran/faster-whisper-{name}) and set MIKUPAL_MODELS_DIR, or go online"
        ) from None
