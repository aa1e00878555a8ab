"""format=webdataset: tar shards of `shard_size` segments, each a `<segment_id>.flac` and a
`<segment_id>.json` (text, speaker, language, emotions, DNSMOS ...), for streaming training.

Shards are `shard-000000.tar`, ... (under `train/` and `test/` with a speaker split); read them
with `webdataset.WebDataset(DIR/"shard-{000000..N}.tar")`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import audio_file, emotion_map, speaker_of

META_KEYS = ("segment_id", "video_id", "source", "start", "end", "duration", "text", "language", "primary_emotion",
             "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "sample_rate", "clip_path", "words")


def metadata(r: dict[str, Any]) -> dict[str, Any]:
    meta = {k: r.get(k) for k in META_KEYS}
    meta["speaker_id"] = speaker_of(r)
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
                sink.write({"__key__": r["segment_id"], "flac": audio_file(root, r).read_bytes(), "json": metadata(r)})
        written += sorted(str(p.relative_to(out)) for p in d.glob("shard-*.tar"))
    return written
