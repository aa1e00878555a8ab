"""format=webdataset: tar shards of `shard_size` segments, each a `<segment_id>.flac` and a
`<segment_id>.json` (`rows.export_fields`: text, words in seconds of the FLAC, the per-video and
global speaker, the source file and span, language, emotions, the measured columns), and with
`clips=true` the speaker clip `<segment_id>.mp4`, for streaming training.

Shards are `shard-000000.tar`, ... (under `train/` and `test/` with a speaker split); read them
with `webdataset.WebDataset(DIR/"shard-{000000..N}.tar")`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import audio_file, clip_file, emotion_map, export_fields


def metadata(r: dict[str, Any]) -> dict[str, Any]:
    meta = export_fields(r)
    meta["emotions"] = emotion_map(r)
    return meta


def write_webdataset(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    import webdataset as wds

    written = []
    for name, rows in splits.items():
        d = out if name == "all" else out / name
        d.mkdir(parents=True, exist_ok=True)
        with wds.ShardWriter(str(d / "shard-%06d.tar"), maxcount=args.shard_size, verbose=0) as sink:
            for r in rows:
                sample = {"__key__": r["segment_id"], "flac": audio_file(root, r).read_bytes(), "json": metadata(r)}
                clip = clip_file(root, r) if getattr(args, "clips", False) else None
                if clip is not None:
                    sample["mp4"] = clip.read_bytes()
                sink.write(sample)
        written += sorted(str(p.relative_to(out)) for p in d.glob("shard-*.tar"))
    return written
