"""Only mikupal/media.py opens media containers and codecs: every other module passes paths and arrays.

Read from the source with `ast` (a lazy import inside a function counts): no other module imports
PyAV, libsndfile, `wave`, PIL, torchcodec or torchaudio's IO (or another decoding library), calls
OpenCV's containers and image codecs (VideoCapture, imwrite, imencode ...) or runs ffmpeg/ffprobe
as a subprocess. OpenCV's image processing (resize, cvtColor, warpAffine ...) is fine anywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "mikupal" / "media.py"

CODEC_PACKAGES = {"av", "soundfile", "wave", "PIL", "torchcodec", "audioread", "pydub", "imageio", "moviepy", "decord", "ffmpeg"}
CODEC_NAMES = {  # a module's name or attribute that opens or encodes media, where the package itself may be used
    *(f"cv2.{f}" for f in ("VideoCapture", "VideoWriter", "imread", "imreadmulti", "imwrite", "imwritemulti", "imencode", "imdecode")),
    *(f"torchaudio.{f}" for f in ("load", "save", "info", "io", "backend", "StreamReader", "StreamWriter", "load_with_torchcodec", "save_with_torchcodec")),
    "librosa.load", "librosa.stream", "scipy.io.wavfile",
}
RUNNERS = {
    *(f"subprocess.{f}" for f in ("run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput")),
    "os.system", "os.popen", "os.execv", "os.execvp", "os.execvpe", "os.execl", "os.execlp", "os.spawnv", "os.spawnvp", "os.posix_spawn", "os.posix_spawnp",
    "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell",
}
FFMPEG = re.compile(r"\bff(mpeg|probe)\b")


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> what it was imported as, dotted ("sp" -> "subprocess", "imwrite" -> "cv2.imwrite")."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:  # `import scipy.io` binds `scipy`
                    out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`cv.imwrite` -> "cv2.imwrite" when `cv` is `import cv2 as cv`; None for what is not an imported name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(attrs)])


def _codec_name(dotted: str) -> str | None:
    """The codec package or name that `dotted` is or lies under, else None."""
    parts = dotted.split(".")
    if parts[0] in CODEC_PACKAGES:
        return parts[0]
    return next((".".join(parts[:k]) for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in CODEC_NAMES), None)


def _strings(node: ast.AST, constants: dict[str, str]) -> list[str]:
    """The string literals in `node`'s subtree, and the module constants it names."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, ast.Name) and n.id in constants:
            out.append(constants[n.id])
    return out


def violations(source: str, module: str) -> list[str]:
    """`module:line: what it does` for each codec import, codec call and ffmpeg run in `source`."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                 and isinstance(n.value.value, str) for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [f"{node.module}.{a.name}" for a in node.names]
            found += [f"{module}:{node.lineno}: imports {codec}" for codec in filter(None, map(_codec_name, names))]
        elif isinstance(node, ast.Attribute):
            # the node that is exactly the codec name: `torchaudio.io` in torchaudio.io.StreamReader, once
            dotted = _dotted(node, aliases)
            if dotted is not None and dotted in CODEC_NAMES:
                found.append(f"{module}:{node.lineno}: calls {dotted}")
        if isinstance(node, ast.Call) and (runner := _dotted(node.func, aliases)) in RUNNERS:
            if any(FFMPEG.search(s) for s in _strings(node, constants)):
                found.append(f"{module}:{node.lineno}: runs ffmpeg/ffprobe through {runner}")
    return sorted(set(found), key=lambda v: int(v.split(":")[1]))


def test_only_media_opens_containers_and_codecs():
    found = []
    for path in sorted((ROOT / "mikupal").rglob("*.py")):
        if path != OWNER:
            found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == [], "only mikupal/media.py opens media; add a named function there for:\n" + "\n".join(found)


def test_the_check_sees_media_py_itself():
    found = violations(OWNER.read_text(encoding="utf-8"), "mikupal/media.py")
    assert any(v.endswith("imports av") for v in found) and any(v.endswith("calls cv2.imencode") for v in found)


@pytest.mark.parametrize("source, expected", [
    ("import soundfile as sf\n", "1: imports soundfile"),
    ("def f():\n    from av.error import FFmpegError\n", "2: imports av"),
    ("import wave\n", "1: imports wave"),
    ("from PIL import Image\n", "1: imports PIL"),
    ("from torchcodec.decoders import AudioDecoder\n", "1: imports torchcodec"),
    ("import torchaudio\nx = torchaudio.load('a.wav')\n", "2: calls torchaudio.load"),
    ("import torchaudio\nr = torchaudio.io.StreamReader(p)\n", "2: calls torchaudio.io"),
    ("from torchaudio import save\n", "1: imports torchaudio.save"),
    ("import scipy.io\nrate, x = scipy.io.wavfile.read(p)\n", "2: calls scipy.io.wavfile"),
    ("import cv2 as cv\nok, buf = cv.imencode('.jpg', img)\n", "2: calls cv2.imencode"),
    ("import cv2\ncap = cv2.VideoCapture(p)\nok, f = cap.read()\n", "2: calls cv2.VideoCapture"),
    ("from cv2 import imwrite\n", "1: imports cv2.imwrite"),
    ("import subprocess\nsubprocess.run(['ffprobe', '-v', 'error', p])\n", "2: runs ffmpeg/ffprobe through subprocess.run"),
    ("import subprocess as sp\nFF = '/usr/bin/ffmpeg'\nsp.check_call([FF, '-i', p])\n", "3: runs ffmpeg/ffprobe through subprocess.check_call"),
    ("import os\nos.system(f'ffmpeg -i {p} out.wav')\n", "2: runs ffmpeg/ffprobe through os.system"),
])
def test_the_check_names_the_module_and_the_call(source, expected):
    assert violations(source, "mikupal/x.py") == [f"mikupal/x.py:{expected}"]


def test_image_processing_and_other_subprocesses_pass():
    source = (
        "import cv2\nimport subprocess\nimport torchaudio.functional as F\nimport librosa\n"
        "small = cv2.resize(img, (64, 64))\ngrey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)\n"
        "mel = librosa.feature.melspectrogram(y=x, sr=16000)\nsubprocess.run(['git', 'rev-parse', 'HEAD'])\n"
        "'''Decoded with ffmpeg elsewhere.'''\n"
    )
    assert violations(source, "mikupal/x.py") == []
