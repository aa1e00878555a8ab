"""`mikupal audio FILE [key=value ...]`: the audio front end on one file, for debugging.

Runs probe -> separate -> vad -> asr on one file with the composed config (e.g.
`separation=none asr.model=tiny.en profile=cpu`) and prints one JSON line per segment, per
reject, and a final summary. Scratch audio goes to `output=` if given, else a temp folder.
An audio-only file is accepted (the video stream matters only to later stages).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile

from ..config import compose
from ..errors import UserError
from ..stages.asr import AsrStage
from ..records import WorkItem
from ..stages.probe import ProbeStage
from ..stages.separate import SeparateStage
from ..stages.vad import VadStage
from .help import CommandHelp

HELP = CommandHelp(
    usage="mikupal audio FILE [key=value ...]",
    what="""probe -> separate -> vad -> asr on one file with the composed run configuration; one JSON line
per segment, per reject, and a summary. Scratch audio goes to output= if given, else a temp folder.
An audio-only file is accepted.""",
    keys=[("output", "keep the scratch audio here (default: a temp folder, removed)"),
          ("separation", "mdx | none"), ("asr.model", "the whisper model"), ("profile", "cpu | gpu"),
          ("models_dir", "the models folder")],
    examples=["mikupal audio examples/talking_face.mp4 separation=none asr.model=tiny.en profile=cpu"],
)


def _emit(kind: str, payload: dict) -> None:
    print(json.dumps({"type": kind, **payload}, ensure_ascii=False), flush=True)


def audio_frontend_command(argv: list[str]) -> int:
    if not argv:
        raise UserError("no file given: mikupal audio FILE [key=value ...]")
    path, overrides = argv[0], argv[1:]
    cfg = compose(overrides)
    out_dir = cfg.output or tempfile.mkdtemp(prefix="mikupal-audio-")
    try:
        items = [WorkItem(source=path)]
        probe = ProbeStage(cfg, out_dir)
        items = probe.run_item(items[0])
        it = items[0]
        if it.status == "dropped" and it.rejects and it.rejects[-1].reason == "no_video_stream" and it.data.video is not None:
            it.rejects.pop()  # audio only is fine for the audio front end
            it.status = "video"
            print("note: audio-only input (no video stream): continuing for the audio stages", file=sys.stderr)
        for stage_cls in (SeparateStage, VadStage, AsrStage):
            stage = stage_cls(cfg, out_dir)
            nxt: list[WorkItem] = []
            for x in items:
                nxt.extend(stage.run_item(x))
            items = nxt
        kept = 0.0
        n_seg = 0
        for x in items:
            if x.data.segment is not None and x.status == "segment":
                n_seg += 1
                kept += x.data.segment.end - x.data.segment.start
                _emit("segment", x.data.segment.model_dump(mode="json"))
            for r in x.rejects:
                _emit("reject", r.model_dump(mode="json"))
        first = items[0]
        _emit(
            "summary",
            {
                "source": path,
                "video_id": first.video_id,
                "duration": first.data.video.duration if first.data.video else None,
                "speech_seconds": first.data.speech_seconds,
                "segments": n_seg,
                "kept_seconds": round(kept, 3),
                "times": [t.model_dump() for t in first.times],
                "vocals_path": first.data.vocals_path,
                "analysis_path": first.data.analysis_path,
            },
        )
        return 0
    finally:
        if not cfg.output:
            shutil.rmtree(out_dir, ignore_errors=True)
