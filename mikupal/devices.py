"""Which device or execution provider a model asks for, and what it really got.

A stage that holds a GPU asks for it: torch for "cuda", ONNX Runtime for the CUDA execution
provider (CPU after it, as ONNX Runtime's own fallback). Both can quietly run on the CPU instead:
torch without a CUDA device, ONNX Runtime without the `onnxruntime-gpu` build (the `onnxruntime`
package that faster-whisper pulls in shadows it) or without the CUDA/cuDNN libraries. Every model
says here what it runs on (one info line), and a model that asked for the GPU and did not get it
is a `fallback`: a warning line, or, where the run requires GPUs (`engine.require_gpu`, set by
`profile=gpu`), a `UserError` that stops the run in one line before hours are spent on the CPU.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from .errors import UserError

log = logging.getLogger("mikupal.devices")

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
GPU_INSTALL_HINT = ('pip install "mikupal[gpu]" (then, if the CPU build still shadows it: '
                    "pip uninstall -y onnxruntime && pip install --force-reinstall --no-deps onnxruntime-gpu)")


def onnx_providers(gpu: bool) -> list[str]:
    """The providers a session asks for: the CUDA one first when its stage holds a GPU."""
    return [CUDA_PROVIDER, CPU_PROVIDER] if gpu else [CPU_PROVIDER]


def fallback(what: str, asked: str, got: str, why: str, require: bool) -> None:
    """A model that asked for the GPU runs on the CPU: stop the run (`require`) or say so."""
    message = f"{what} asked for {asked} but runs on {got}: {why}"
    if require:
        raise UserError(f"{message} (engine.require_gpu is on under profile=gpu; engine.require_gpu=false runs it on the CPU)")
    log.warning(message)


def check_onnx(session: Any, what: str, gpu: bool, require: bool) -> str:
    """The provider an ONNX Runtime session really runs on (its first), logged; a CUDA request
    that ended on the CPU is a `fallback`."""
    got = session.get_providers()[0] if session.get_providers() else CPU_PROVIDER
    if gpu and got != CUDA_PROVIDER:
        import onnxruntime as ort

        available = ort.get_available_providers()
        why = (f"this onnxruntime build has no CUDA provider (available: {', '.join(available)}); {GPU_INSTALL_HINT}"
               if CUDA_PROVIDER not in available else
               "the CUDA provider did not load (CUDA 12/13 and cuDNN 9 libraries must be visible to the loader)")
        fallback(what, CUDA_PROVIDER, got, why, require)
    log.info("%s runs on %s", what, got)
    return got


def onnx_session(model: Any, opts: Any, what: str, gpu: bool = False, require: bool = False):
    """An ONNX Runtime session (`model`: a path or serialized bytes) on the stage's device, checked."""
    import onnxruntime as ort

    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts, providers=onnx_providers(gpu))
    check_onnx(session, what, gpu, require)
    return session


def torch_device(what: str, gpu: bool, require: bool = False) -> str:
    """"cuda" when the stage holds a GPU and torch sees one, else "cpu" (a `fallback` when it held one)."""
    if not gpu:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        log.info("%s runs on cuda (%s)", what, torch.cuda.get_device_name(0))
        return "cuda"
    visible: Optional[str] = os.environ.get("CUDA_VISIBLE_DEVICES")
    fallback(what, "cuda", "cpu", f"torch sees no CUDA device (torch {torch.__version__}, CUDA_VISIBLE_DEVICES={visible!r})",
             require)
    return "cpu"


def expose_pip_cuda_libs(packages: tuple[str, ...] = ("cublas",), soname_suffix: str = ".so.12") -> list[str]:
    """Load the CUDA libraries pip installed under `nvidia/<package>/lib` (RTLD_GLOBAL), so a library
    that opens them by name (CTranslate2 4.x: libcublas.so.12) finds them without LD_LIBRARY_PATH.
    Nothing happens where they are not installed (CPU machines); returns the files loaded."""
    import ctypes
    import glob
    import importlib.util

    loaded: list[str] = []
    for package in packages:
        try:
            spec = importlib.util.find_spec(f"nvidia.{package}")
        except ModuleNotFoundError:
            continue
        for folder in (spec.submodule_search_locations or []) if spec else []:
            # the Lt library first: the other one links to it by name
            for lib in sorted(glob.glob(os.path.join(folder, "lib", f"lib*{soname_suffix}")), key=lambda p: "Lt" not in p):
                try:
                    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                    loaded.append(lib)
                except OSError as e:
                    log.debug("could not load %s: %s", lib, e)
    return loaded
