"""A finished output dir -> the format a training toolkit reads (`mikupal export`, commands/export.py).

    mikupal export input=OUT format=hf|parler|lhotse|webdataset|list output=DIR
        [min_dnsmos=3.0] [min_avg_logprob=-0.8] [emotions=[joy,amusement]] [speakers=[...]] [languages=[en]]
        [test_fraction=0.1 seed=0] [shard_size=1000] [loudness=-23|null]

Filters keep a segment when all given ones hold (DNSMOS OVRL at least `min_dnsmos`, primary emotion
in `emotions`, speaker in `speakers` (a global id G<k> or a per-video id), language in
`languages`); a value no segment has is a one-line error naming it. With `test_fraction` > 0 the
people are split, not the segments: a person is their global speaker id (`global_speakers.parquet`,
the same voice across videos), so no one is in both train and test. What was written and with
which filters lands in `DIR/export.json`.

Every format writes the same stand-alone fields (`rows.export_fields`): the global and per-video
speaker, the source file and the span in it (`source_start`, `source_end`), the measured columns
(SNR, ASD, DNSMOS ...), and `words` with times relative to the exported audio. The speaker clips
are embedded with `clips=true` (hf: a `clip` column of MP4 bytes; webdataset: `<id>.mp4`; lhotse:
their absolute path), else left out: nothing points back into the run's folder by a relative path.
`loudness` (LUFS, -23 by default; null = the audio as the run wrote it) exports
loudness-normalised copies (`loudness.py`), never touching the run's files.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import UserError
from ..config import did_you_mean
from .rows import load_segments, person_of, speaker_of, with_global_ids

Rows = list[dict[str, Any]]
EMBEDS_AUDIO = {"hf", "parler", "webdataset"}  # formats whose files hold the audio bytes


def _comma_list(v: Any) -> Any:
    """`emotions=joy,anger` as well as `emotions=[joy,anger]`."""
    return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


class ExportArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    input: str  # a mikupal output dir (holds segments/)
    format: Literal["hf", "parler", "lhotse", "webdataset", "list"]
    output: str
    min_dnsmos: Optional[float] = Field(None, ge=1, le=5)  # on dnsmos_ovrl; a segment without a score fails it
    min_avg_logprob: Optional[float] = Field(None, le=0)  # whisper's transcript confidence (e.g. -0.8 for TTS text)
    emotions: Optional[list[str]] = None  # primary emotions kept
    speakers: Optional[list[str]] = None  # speaker ids kept (video ids for outputs without speaker_id)
    languages: Optional[list[str]] = None
    test_fraction: float = Field(0.0, ge=0, lt=1)  # share of the seconds given to held-out speakers
    seed: int = 0
    shard_size: int = Field(1000, ge=1)  # webdataset: segments per tar shard
    loudness: Optional[float] = Field(-23.0, ge=-70, le=0)  # LUFS of the exported audio; None: as the run wrote it
    clips: bool = False  # embed the speaker clips (MP4) in the export; false: leave them out

    _lists = field_validator("emotions", "speakers", "languages", mode="before")(_comma_list)


def keep(row: dict[str, Any], args: ExportArgs) -> bool:
    if args.min_dnsmos is not None and (row.get("dnsmos_ovrl") is None or row["dnsmos_ovrl"] < args.min_dnsmos):
        return False
    if args.min_avg_logprob is not None and (row.get("avg_logprob") is None or row["avg_logprob"] < args.min_avg_logprob):
        return False
    if args.emotions is not None and (row.get("primary_emotion") or "").lower() not in {e.lower() for e in args.emotions}:
        return False
    if args.speakers is not None and speaker_of(row) not in args.speakers and person_of(row) not in args.speakers:
        return False
    return args.languages is None or row.get("language") in args.languages


def check_filters(rows: Rows, args: ExportArgs) -> None:
    """A filter value no segment has is a mistake, named in one line (with the nearest spelling),
    not an empty export."""
    have = {
        "emotions": {r.get("primary_emotion") for r in rows} - {None, ""},
        "speakers": {speaker_of(r) for r in rows} | {person_of(r) for r in rows},
        "languages": {r.get("language") for r in rows} - {None, ""},
    }
    categories = {e["name"] for r in rows for e in r.get("emotions") or []} | have["emotions"]
    for key, known in have.items():
        for value in getattr(args, key) or []:
            if value in known or (key == "emotions" and value.lower() in {k.lower() for k in known}):
                continue
            if key == "emotions" and not known:
                raise UserError(f"emotions={value}: no segment of {args.input} is labeled (run `mikupal label input=...` first)")
            listed = ", ".join(sorted(known)[:12]) + (" ..." if len(known) > 12 else "")
            if key == "emotions" and value.lower() in {c.lower() for c in categories}:
                raise UserError(f"emotions: no segment has the primary emotion '{value}' (primary emotions here: {listed})")
            near = did_you_mean(value, sorted(categories if key == "emotions" else known))
            raise UserError(f"{key}: unknown value '{value}'{near} (in this output: {listed})")


def split_by_speaker(rows: Rows, test_fraction: float, seed: int) -> dict[str, Rows]:
    """People (global speaker ids: `rows.person_of`) in a seeded random order go to test until it
    holds `test_fraction` of the seconds; at least one person goes to each side."""
    seconds: dict[str, float] = {}
    for r in rows:
        seconds[person_of(r)] = seconds.get(person_of(r), 0.0) + float(r.get("duration") or 0.0)
    if len(seconds) < 2:
        raise UserError(f"a train/test split by speaker needs at least 2 speakers; the selection has {len(seconds)}")
    order = sorted(seconds)
    random.Random(seed).shuffle(order)
    total, held, test = sum(seconds.values()), 0.0, set()
    for spk in order[:-1]:  # the last one always trains
        if test and held >= test_fraction * total:
            break
        test.add(spk)
        held += seconds[spk]
    return {"train": [r for r in rows if person_of(r) not in test], "test": [r for r in rows if person_of(r) in test]}


def _writer(fmt: str):
    if fmt == "hf":
        from .hf import write_hf

        return write_hf
    if fmt == "parler":
        from .parler import write_parler

        return write_parler
    if fmt == "lhotse":
        from .lhotse_manifest import write_lhotse

        return write_lhotse
    if fmt == "webdataset":
        from .webdataset_shards import write_webdataset

        return write_webdataset
    from .tts_list import write_list

    return write_list


def export(args: ExportArgs) -> dict[str, Any]:
    root, out = Path(args.input).expanduser(), Path(args.output).expanduser()
    if out.resolve() == root.resolve():
        raise UserError("output= must be a new folder, not the run's output dir")
    if out.exists() and not out.is_dir():
        raise UserError(f"output is a file, not a folder: {args.output} (pass output=DIR, a new folder)")
    if not root.is_dir():
        raise UserError(f"input is not a folder: {args.input} (pass input=OUT, a mikupal output dir)")
    rows = with_global_ids(load_segments(root), root)
    check_filters(rows, args)
    selected = [r for r in rows if keep(r, args)]
    if not selected:
        raise UserError(f"no segment of {root} passes the filters ({len(rows)} segments before filtering)")
    splits = split_by_speaker(selected, args.test_fraction, args.seed) if args.test_fraction > 0 else {"all": selected}
    out.mkdir(parents=True, exist_ok=True)
    if args.loudness is not None:
        from .loudness import AUDIO_DIR, normalised_copies

        splits = normalised_copies(root, out, splits, args.loudness)
    written = _writer(args.format)(root, out, splits, args)
    if args.loudness is not None and args.format in EMBEDS_AUDIO:  # the copies are inside the files now
        shutil.rmtree(out / AUDIO_DIR, ignore_errors=True)
        written = [f for f in written if not f.startswith(AUDIO_DIR + "/")]
    summary = {
        "format": args.format, "input": str(root), "output": str(out),
        "filters": args.model_dump(include={"min_dnsmos", "min_avg_logprob", "emotions", "speakers", "languages", "test_fraction", "seed"}),
        "loudness_lufs": args.loudness,
        "clips": args.clips,
        "segments_before_filters": len(rows),
        "splits": {name: {"segments": len(rs), "speakers": sorted({person_of(r) for r in rs}),
                          "seconds": round(sum(float(r.get("duration") or 0) for r in rs), 3)} for name, rs in splits.items()},
        "files": written,
    }
    if args.format == "list":
        from .tts_list import fields

        summary["list_fields"] = fields(splits)
    (out / "export.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

