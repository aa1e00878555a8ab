"""A model file that is present but broken (what a failed download leaves: an HTML error page or a
truncated file) stops the run in one line naming it, for every kind of model: at the preflight
(before any worker starts), and in the stage's own `setup()` when it gets that far (`Stage.start`,
the one place both engines meet it). `mikupal models` lists such a file as broken and exits 1.
Downloads are checked before they take their place."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
from audio_fixtures import TINY_MDX, TINY_MDX_DATA, TINY_SEGMENT_SIZE, ge2e_weights, place_tiny_mdx, tiny_en_dir

from mikupal.config import compose
from mikupal.errors import UserError
from mikupal.models_dir import PUBLISHED, Published, check, dnsmos_dir, download, file_need

HTML = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


def _torch_file(path: Path) -> Path:
    """A torch checkpoint (zip) of the kind S3FD and TalkNet ship, for kinds with no file here."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"layer{i}.weight": torch.randn(64, 64) for i in range(8)}, path)
    return path


def _place(kind: str, root: Path, models_dir: Path) -> tuple[list[str], Path]:
    """(overrides selecting the kind, its file) with a whole copy of a real file where the models
    dir `root` holds that kind (left as it is when already there)."""
    if kind == "whisper":
        if tiny_en_dir() is None:
            pytest.skip("faster-whisper tiny.en is not installed")
        d = root / "whisper" / "tiny.en"
        if not d.exists():
            shutil.copytree(tiny_en_dir(), d)
        return ["asr.model=tiny.en"], d / "model.bin"
    if kind == "dnsmos":
        d = root / "dnsmos"
        if not d.exists():
            shutil.copytree(dnsmos_dir(), d)
        return [f"quality.model_dir={d}"], d / "sig_bak_ovr.onnx"
    if kind == "mdx":
        p = root / "mdx" / TINY_MDX
        if not p.exists():
            place_tiny_mdx(root)
            # parameters by name, so the broken copy still gets as far as loading
            (p.parent / f"{TINY_MDX}.json").write_text(json.dumps(TINY_MDX_DATA))
        return ["separation=mdx", f"separation.model={TINY_MDX}", f"separation.segment_size={TINY_SEGMENT_SIZE}"], p
    rel, extra = {"ge2e": ("ge2e/pretrained.pt", []), "yunet": ("yunet/yunet_s_640_640.onnx", []),
                  "light-asd": ("light-asd/pretrain_AVA_CVPR.model", []), "lr-asd": ("lr-asd/pretrain_AVA.model", ["asd=lr_asd"]),
                  "s3fd": ("s3fd/sfd_face.pth", ["faces=s3fd"]), "talknet": ("talknet/pretrain_TalkSet.model", ["asd=talknet"])}[kind]
    p = root / rel
    if p.exists():
        return extra, p
    if kind in ("s3fd", "talknet"):
        return extra, _torch_file(p)
    src = ge2e_weights() if kind == "ge2e" else (models_dir / rel).resolve()
    if src is None or not src.is_file():
        pytest.skip(f"{rel} is not available")
    p.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, p)
    return extra, p


KINDS = ("whisper", "ge2e", "yunet", "s3fd", "light-asd", "lr-asd", "talknet", "dnsmos", "mdx")


def _break(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.unlink()  # a copy or a link: never write through to the original
    path.write_bytes(HTML if how == "html" else data[: len(data) // 2])


def _cfg(root: Path, extra: list[str]):
    base = [f"models_dir={root}", "offline=true", "profile=cpu", "labeler=none", "asr.model=tiny.en",
            "asr.language_id_model=null"]
    if not any(o.startswith("separation=") for o in extra):
        base.append("separation=none")
    return compose([*base, *extra])


@pytest.fixture
def complete(tmp_path, models_dir):
    """A models dir holding every file of a default CPU run (whisper, GE2E, YuNet, Light-ASD)."""
    root = tmp_path / "models"
    for kind in ("whisper", "ge2e", "yunet", "light-asd"):
        _place(kind, root, models_dir)
    return root


def _needs(cfg):
    from mikupal.engine.stages import model_needs

    return model_needs(cfg)


@pytest.mark.parametrize("how", ["truncated", "html"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_file_of_each_kind_stops_the_preflight_in_one_line(kind, how, complete, models_dir):
    from mikupal.engine.stages import preflight

    extra, path = _place(kind, complete, models_dir)
    _break(path, how)
    cfg = _cfg(complete, extra)
    named = path.parent if kind == "whisper" else path
    states = {n.path: check(n).state for n in _needs(cfg)}
    assert states.get(named) == "broken", states
    with pytest.raises(UserError) as e:
        preflight(cfg)
    msg = str(e.value)
    assert "\n" not in msg and str(named) in msg and "broken" in msg, msg
    assert ("HTML page" in msg) if how == "html" else any(w in msg for w in ("truncated", "bytes", "not a whole")), msg


def _stage_for(kind: str):
    from mikupal.stages.asr import AsrStage
    from mikupal.stages.quality import QualityStage
    from mikupal.stages.separate import SeparateStage
    from mikupal.stages.speaker import SpeakerStage
    from mikupal.stages.vision import VisionStage

    return {"whisper": AsrStage, "ge2e": SpeakerStage, "dnsmos": QualityStage, "mdx": SeparateStage}.get(kind, VisionStage)


@pytest.mark.parametrize("how", ["truncated", "html"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_file_of_each_kind_fails_setup_as_the_runs_error(kind, how, complete, models_dir, tmp_path):
    """Past the preflight (a file broken after it, or one it cannot judge), the stage's own load
    fails: `Stage.start` makes it a UserError naming the file, never an item's reject."""
    extra, path = _place(kind, complete, models_dir)
    _break(path, how)
    stage = _stage_for(kind)(_cfg(complete, extra), tmp_path / "out", threads=1)
    with pytest.raises(UserError) as e:
        stage.start()
    msg = str(e.value)
    named = {"whisper": path.parent, "mdx": TINY_MDX}.get(kind, path)
    assert "\n" not in msg and str(named) in msg, msg
    assert not stage._ready


def test_models_lists_broken_present_and_other_files_and_exits_1(complete, models_dir, capsys):
    from mikupal.commands.models import models_command

    base = [f"models_dir={complete}", "offline=true", "profile=cpu", "separation=none", "labeler=none", "asr.model=tiny.en",
            "asr.language_id_model=null"]
    assert models_command(base) == 0
    out = capsys.readouterr().out
    states = [line.split()[0] for line in out.splitlines()[1:] if not line.startswith("{")]
    assert "present  asr" in out and "present  faces" in out and set(states) == {"present"}, out
    _place("lr-asd", complete, models_dir)  # in the folder, not used by this configuration: listed apart
    yunet = complete / "yunet" / "yunet_s_640_640.onnx"
    _break(yunet, "html")
    assert models_command(base) == 1
    out = capsys.readouterr().out
    assert f"broken   faces       {yunet}: an HTML page, not a model" in out, out
    assert f"also in {complete}:" in out and str(complete / "lr-asd" / "pretrain_AVA.model") in out
    shutil.rmtree(complete / "light-asd")
    assert models_command(base) == 1
    assert "MISSING  asd" in capsys.readouterr().out


def test_models_loads_what_it_checks(complete, capsys):
    """A file whole in form but not loadable by its runtime (valid zip, not a checkpoint) is broken."""
    import zipfile

    from mikupal.commands.models import models_command

    target = complete / "light-asd" / "pretrain_AVA_CVPR.model"
    target.unlink()
    with zipfile.ZipFile(target, "w") as z:
        z.writestr("notes.txt", "not a model")
    base = [f"models_dir={complete}", "offline=true", "profile=cpu", "separation=none", "labeler=none", "asr.model=tiny.en",
            "asr.language_id_model=null", f"asd.model={target}"]
    assert models_command(base) == 1
    assert f"broken   asd         {target}: will not load" in capsys.readouterr().out


class _Serve(http.server.BaseHTTPRequestHandler):
    body = b""
    announce: int | None = None

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(self.announce if self.announce is not None else len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def _fetch(server, tmp_path, body: bytes, announce=None, published=None, fmt="torch"):
    _Serve.body, _Serve.announce = body, announce
    path = tmp_path / "dl" / "weights.model"
    download(f"http://127.0.0.1:{server.server_port}/w", path, fmt, published, timeout=10)
    return path


def test_downloads_are_checked_before_they_take_their_place(server, tmp_path, models_dir):
    good = (models_dir / "light-asd" / "pretrain_AVA_CVPR.model").resolve().read_bytes()
    published = PUBLISHED["light-asd/pretrain_AVA_CVPR.model"]
    assert _fetch(server, tmp_path, good, published=published).read_bytes() == good
    cases = {
        "an HTML page": dict(body=HTML),
        "published file has": dict(body=good[:-1000], published=published),
        "differs from the published": dict(body=good, published=Published(len(good), "0" * 64)),
        "truncated": dict(body=good[: len(good) // 2]),
    }
    for why, kw in cases.items():
        shutil.rmtree(tmp_path / "dl", ignore_errors=True)
        with pytest.raises(UserError, match=why) as e:
            _fetch(server, tmp_path, **kw)
        assert "\n" not in str(e.value)
        assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir()), "nothing left behind"


def test_every_downloadable_file_has_published_facts():
    from mikupal.models_dir import OFFICIAL_SOURCES

    assert {rel for rel, url in OFFICIAL_SOURCES.items() if url} == set(PUBLISHED)
    need = file_need("asd", "/m", "light-asd/pretrain_AVA_CVPR.model", "torch")
    assert need.published == PUBLISHED["light-asd/pretrain_AVA_CVPR.model"] and need.url
