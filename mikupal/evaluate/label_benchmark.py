"""Label a benchmark's own pre-cut clips with the MLLM labeler, then score the labels.

    mikupal evaluate dataset=meld split=test clips=MELD.Raw/output_repeated_splits_test \
        meld_dir=MELD.Raw labeler=gemini labeler.model=gemini-3.8-flash output=runs/meld1 [limit=50]
    mikupal evaluate dataset=iemocap split=5 iemocap_dir=IEMOCAP_full_release labeler.mode=audio output=...
    mikupal evaluate dataset=table gold=items.csv id_columns=[id] gold_column=label clips=media/ output=...

No segmentation: each benchmark item is one utterance whose clip already exists. The labeler's
label set is the benchmark's closed set (`meld`, `iemocap`; for a table: `taxonomy=`, `labels=[...]`
or the gold labels), so the model answers in the benchmark's own labels and nothing is mapped.

Items and their media:
- MELD: `clips=DIR` holds `dia{D}_utt{U}.mp4` (looked up directly, then anywhere under DIR).
  Audio mode extracts the clip's sound track; text mode sends the utterance and the earlier
  turns of its dialogue (`labeler.context_turns`, as `Speaker: text`) and needs no clips.
- IEMOCAP: `clips=` defaults to the IEMOCAP root. Audio mode sends
  `Session*/sentences/wav/<dialog>/<utterance>.wav`; video mode uses `<utterance>.mp4` when present,
  else cuts [start, end] out of `Session*/dialog/avi/DivX/<dialog>.avi` (with the utterance wav).
- table: `clip_column` (default `clip`) holds paths, absolute or relative to `clips=`;
  `text_column` (default `text`) the transcript.
Converted or cut media are cached under `output/media/`. An item whose clip is missing is
recorded (`reason=missing_clip`) and counted (`n_missing_clips`), never sent.

`output/predictions.parquet`: id columns, `segment_id`, `prediction` (null when the item has no
label), `reason`/`message` of failures, `cost_usd` (all attempts, all runs), tokens, the model and
settings. Written atomically while labeling; a re-run skips the rows that have a prediction and
retries the others. Labeling into a folder that holds predictions of another model, mode, prompt
or seed is refused (one folder = one run, so repeated runs can be compared with `mikupal agreement`).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mikupal.config import RunConfig
from mikupal.errors import UserError
from mikupal import atomic
from mikupal.evaluate.datasets import iemocap, meld, table
from mikupal.labelers.requests import context_turns as dialogue_context
from mikupal.taxonomy import Category, Taxonomy, load_taxonomy

PREDICTIONS_FILE = "predictions.parquet"
PRED_COLUMN = "prediction"
MISSING_CLIP = "missing_clip"
MEDIA_UNREADABLE = "media_unreadable"
MEDIA_DIR = "media"
AUDIO_RATE = 16000  # what Gemini resamples audio to anyway
CUT_WIDTH = 640  # frames of cut clips are scaled down to this width at most
CUT_FPS = 25.0
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}
SENDABLE_VIDEO = {".mp4", ".mov", ".webm"}  # sent as is in video mode; other containers are re-encoded
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"}
FLUSH_EVERY = 25  # results between checkpoints of predictions.parquet
FLUSH_SECONDS = 20.0


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- benchmark items


@dataclass
class Item:
    """One benchmark utterance to label."""

    segment_id: str
    ids: dict[str, Any]  # id column -> value, as in the gold table
    text: str
    gold: Optional[str]
    context: list[str] = field(default_factory=list)  # earlier turns (text mode)
    source: Optional[Path] = None  # the media file found; None: missing (or not needed in text mode)
    expected: str = ""  # where the clip was looked for (for the missing-clip message)
    start: Optional[float] = None  # cut [start, end] seconds out of `source` (IEMOCAP dialogue videos)
    end: Optional[float] = None
    audio_source: Optional[Path] = None  # muxed into a cut clip instead of the source's own sound


@dataclass
class Benchmark:
    name: str  # meld | iemocap | table
    desc: str  # meld:test, iemocap:5, table:PATH
    id_columns: list[str]
    gold_column: str
    taxonomy: Taxonomy
    items: list[Item]
    gold: pd.DataFrame
    needs_media: bool = True
    clips: Optional[Path] = None


class ClipFinder:
    """Media files under a folder: a relative path first, then the file name anywhere below it."""

    def __init__(self, root: Optional[Path]):
        self.root = root
        self._by_name: Optional[dict[str, Path]] = None

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            if self.root is not None:
                for folder, _, files in os.walk(self.root):
                    for name in files:
                        if not name.startswith("._"):  # macOS resource forks
                            self._by_name.setdefault(name, Path(folder) / name)
        return self._by_name

    def find(self, *candidates: str) -> Optional[Path]:
        if self.root is None:
            return None
        for rel in candidates:
            path = Path(rel).expanduser()
            path = path if path.is_absolute() else self.root / path
            if path.is_file():
                return path
        index = self._index()
        for rel in candidates:
            hit = index.get(Path(rel).name)
            if hit is not None:
                return hit
        return None


def _clips_dir(clips: Optional[str | Path]) -> Optional[Path]:
    if clips is None or str(clips) == "":
        return None
    path = Path(clips).expanduser()
    if not path.is_dir():
        raise UserError(f"clips is not a folder: {path}")
    return path


def _check_unique(items: Sequence[Item], source: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.segment_id in seen:
            raise ValueError(f"{source}: two items share the ids {item.ids}")
        seen.add(item.segment_id)


def load_meld(folder: str | Path, split: str, clips: Optional[str | Path], mode: str, context_turns: int) -> Benchmark:
    rows = meld.read_meld(folder, split)
    clip_dir = _clips_dir(clips)
    if mode != "text" and clip_dir is None:
        raise UserError(
            f"labeler.mode={mode} needs the MELD clips: pass clips=DIR (the folder of dia{{D}}_utt{{U}}.mp4), "
            "or label the transcripts with labeler.mode=text"
        )
    finder = ClipFinder(clip_dir if mode != "text" else None)
    contexts = dialogue_context(rows, context_turns if mode == "text" else 0, dialogue=lambda r: r.dialogue_id,
                                order=lambda r: r.utterance_id, line=meld.speaker_line)
    items = [
        Item(
            segment_id=f"dia{r.dialogue_id}_utt{r.utterance_id}",
            ids={"dialogue_id": r.dialogue_id, "utterance_id": r.utterance_id},
            text=r.text,
            gold=r.emotion,
            context=context,
            source=finder.find(r.clip),
            expected=str(clip_dir / r.clip) if clip_dir else r.clip,
        )
        for r, context in zip(rows, contexts)
    ]
    _check_unique(items, f"MELD {split}")
    return Benchmark(
        name="meld", desc=f"meld:{split}", id_columns=list(meld.ID_COLUMNS), gold_column=meld.LABEL_COLUMN,
        taxonomy=load_taxonomy("meld"), items=items, gold=meld.meld_table(rows).to_pandas(),
        needs_media=mode != "text", clips=clip_dir,
    )  # fmt: skip


def load_iemocap(
    root: str | Path, sessions: Optional[list[int]], clips: Optional[str | Path], mode: str, context_turns: int
) -> Benchmark:
    root = Path(root).expanduser()
    every = iemocap.read_iemocap(root, sessions, keep_unlabeled=True)  # xxx turns are context too
    labeled = [r for r in every if r.emotion is not None]
    clip_dir = _clips_dir(clips) or root
    finder = ClipFinder(clip_dir if mode != "text" else None)
    turns = dialogue_context(every, context_turns if mode == "text" else 0, dialogue=lambda r: r.dialog,
                             order=lambda r: r.start, line=lambda e: f"{_iemocap_speaker(e)}: {e.text}" if e.text else "")
    contexts = {r.utterance_id: t for r, t in zip(every, turns)}
    items = []
    for r in labeled:
        item = Item(segment_id=r.utterance_id, ids={"utterance_id": r.utterance_id}, text=r.text, gold=r.emotion,
                    context=contexts.get(r.utterance_id, []))  # fmt: skip
        if mode == "audio":
            item.source = finder.find(r.wav_path, f"{r.utterance_id}.wav", f"{r.utterance_id}.flac")
            item.expected = str(clip_dir / r.wav_path)
        elif mode == "video":
            item.source = finder.find(f"{r.utterance_id}.mp4")  # pre-cut utterance clips, if the user has them
            item.expected = f"{clip_dir / (r.utterance_id + '.mp4')} or {clip_dir / r.avi_path}"
            if item.source is None:
                avi = finder.find(r.avi_path)
                if avi is not None:
                    item.source, item.start, item.end = avi, r.start, r.end
                    item.audio_source = finder.find(r.wav_path)
        items.append(item)
    _check_unique(items, "IEMOCAP")
    desc = ",".join(str(s) for s in sessions) if sessions else "all"
    return Benchmark(
        name="iemocap", desc=f"iemocap:{desc}", id_columns=list(iemocap.ID_COLUMNS),
        gold_column=iemocap.LABEL_COLUMN, taxonomy=load_taxonomy("iemocap"), items=items,
        gold=iemocap.iemocap_table(labeled).to_pandas(), needs_media=mode != "text", clips=clip_dir,
    )  # fmt: skip


def _iemocap_speaker(r: "iemocap.IemocapUtterance") -> str:
    letter = r.utterance_id.rsplit("_", 1)[-1][:1]
    return {"F": "Female speaker", "M": "Male speaker"}.get(letter, "Speaker")


def table_taxonomy(
    taxonomy: Optional[str], labels: Optional[Sequence[str]], gold_labels: Sequence[str]
) -> Taxonomy:
    """The label set of a table benchmark: a named/YAML taxonomy, else `labels`, else the gold labels."""
    if taxonomy:
        return load_taxonomy(taxonomy)
    names = list(dict.fromkeys(str(x).strip() for x in (labels or sorted(set(gold_labels))) if str(x).strip()))
    if not names:
        raise ValueError("no labels: the gold column is empty (pass labels=[...] or taxonomy=NAME)")
    return Taxonomy(
        name="labels",
        closed=True,
        categories=[
            Category(name=n, description=f"The speaker's emotion is best described as '{n}'.", color="#8d99ae")
            for n in names
        ],
    )


def load_table(
    path: str | Path,
    id_columns: Sequence[str],
    gold_column: str,
    clips: Optional[str | Path],
    mode: str,
    text_column: str = "text",
    clip_column: str = "clip",
    taxonomy: Optional[str] = None,
    labels: Optional[Sequence[str]] = None,
) -> Benchmark:
    df = table.read_any(path)
    needed = [*id_columns, gold_column, clip_column if mode != "text" else text_column]
    table.require_columns(df, needed, path)
    clip_dir = _clips_dir(clips)
    base = clip_dir or Path(path).expanduser().resolve().parent
    finder = ClipFinder(base if mode != "text" else None)
    items = []
    for rec in df.to_dict("records"):
        ids = {c: rec[c] for c in id_columns}
        gold = rec[gold_column]
        gold = None if gold is None or (isinstance(gold, float) and math.isnan(gold)) else str(gold).strip()
        text = rec.get(text_column) if text_column in df.columns else ""
        text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
        item = Item(segment_id="|".join(str(v) for v in ids.values()), ids=ids, text=text, gold=gold)
        if mode != "text":
            clip = rec.get(clip_column)
            clip = "" if clip is None or (isinstance(clip, float) and math.isnan(clip)) else str(clip).strip()
            item.source = finder.find(clip) if clip else None
            item.expected = str(base / clip) if clip else f"(empty {clip_column})"
        items.append(item)
    _check_unique(items, str(path))
    tax = table_taxonomy(taxonomy, labels, [i.gold for i in items if i.gold])
    return Benchmark(
        name="table", desc=f"table:{path}", id_columns=list(id_columns), gold_column=gold_column, taxonomy=tax,
        items=items, gold=df, needs_media=mode != "text", clips=clip_dir,
    )  # fmt: skip


# ---------------------------------------------------------------- media


def _safe_name(segment_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", segment_id)


def cut_clip(
    source: Path, dest: Path, start: float = 0.0, end: Optional[float] = None, audio_source: Optional[Path] = None
) -> Path:
    """Re-encode [start, end) of `source` as an H.264/AAC MP4 (frames at most CUT_WIDTH wide)."""
    from mikupal.media import decode_audio, duration_seconds, iter_video, write_clip

    if end is None:
        end = duration_seconds(source)
    frames = [f for _, f in iter_video(source, start, end, CUT_FPS, CUT_WIDTH)]
    if not frames:
        raise ValueError(f"no video frames in {source} between {start:.2f}s and {end:.2f}s")
    try:
        if audio_source is not None:
            audio = decode_audio(audio_source, 0.0, None, AUDIO_RATE)
        else:
            audio = decode_audio(source, start, end, AUDIO_RATE)
    except Exception:  # noqa: BLE001 - a silent clip still shows the face
        audio = None
    write_clip(dest, frames, CUT_FPS, audio, AUDIO_RATE)
    return dest


def prepare_media(item: Item, mode: str, cache: Path) -> Optional[Path]:
    """The file to send for `item` in `mode`: the clip itself, or a converted/cut copy under `cache`."""
    from mikupal.media import decode_audio, write_audio

    src = item.source
    if mode == "text" or src is None:
        return None
    suffix = src.suffix.lower()
    cut = item.start is not None
    if mode == "audio":
        if suffix in AUDIO_SUFFIXES and not cut:
            return src
        dest = cache / "audio" / f"{_safe_name(item.segment_id)}.flac"
        if not dest.is_file():
            audio = decode_audio(src, item.start or 0.0, item.end, AUDIO_RATE)
            if audio.size == 0:
                raise ValueError(f"no audio in {src}")
            write_audio(dest, audio, AUDIO_RATE)
        return dest
    if suffix in SENDABLE_VIDEO and not cut:
        return src
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"video mode needs a video clip, got {src.name}")
    dest = cache / "video" / f"{_safe_name(item.segment_id)}.mp4"
    if not dest.is_file():
        cut_clip(src, dest, item.start or 0.0, item.end, item.audio_source)
    return dest


# ---------------------------------------------------------------- predictions.parquet


def run_settings(cfg: RunConfig, taxonomy: Taxonomy) -> dict[str, Any]:
    """What must match for predictions of two runs to sit in one file."""
    lab = cfg.labeler
    return {
        "kind": lab.kind,
        "model": lab.model,
        "mode": lab.mode,
        "prompt_version": lab.prompt_version,
        "taxonomy": taxonomy.name,
        "labels": taxonomy.names(),
        "temperature": lab.temperature,
        "seed": lab.seed,
        "samples": lab.samples,
        "media_resolution": lab.media_resolution if lab.mode != "text" else None,
        "context_turns": lab.context_turns if lab.mode == "text" else None,
        "thinking_budget": lab.thinking_budget,
    }


class PredictionStore:
    """The rows of `predictions.parquet`, keyed by segment_id; checkpointed atomically."""

    def __init__(self, path: Path, benchmark: Benchmark, settings: dict[str, Any]):
        self.path = path
        self.benchmark = benchmark.desc
        self.settings = json.dumps(settings, sort_keys=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self._order = {item.segment_id: i for i, item in enumerate(benchmark.items)}  # file order of the rows
        self._since_flush = 0
        self._last_flush = time.monotonic()
        if path.is_file():
            self._load(benchmark)

    def _load(self, benchmark: Benchmark) -> None:
        try:
            df = pq.read_table(self.path).to_pandas()
        except (OSError, pa.ArrowInvalid) as e:
            raise UserError(f"cannot read {self.path}: {e} (delete it to start over)") from None
        need = ["segment_id", PRED_COLUMN, "benchmark", "settings", *benchmark.id_columns]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise UserError(f"{self.path} is not a predictions file of this command (missing columns {missing}); "
                            "use another output=DIR")  # fmt: skip
        done = df[df[PRED_COLUMN].notna()]
        other = done[(done["benchmark"] != self.benchmark) | (done["settings"] != self.settings)]
        if len(other):
            first = other.iloc[0]
            raise UserError(
                f"{self.path} already holds {len(other)} predictions of another run ({first['benchmark']}, "
                f"settings {first['settings']}); now: {self.benchmark}, settings {self.settings}. "
                "Label into another output=DIR (one folder per run), or delete the file to start over"
            )
        for rec in df.to_dict("records"):
            self.rows[rec["segment_id"]] = {k: (None if _is_missing(v) else v) for k, v in rec.items()}

    def done(self, segment_id: str) -> bool:
        row = self.rows.get(segment_id)
        return row is not None and row.get(PRED_COLUMN) is not None

    def put(self, item: Item, *, prediction: Optional[str] = None, reason: Optional[str] = None,
            message: str = "", cost_usd: float = 0.0, input_tokens: int = 0, output_tokens: int = 0,
            attempts: int = 0, labeler_model: Optional[str] = None, rationale: Optional[str] = None,
            media: Optional[Path] = None, model: str = "", mode: str = "") -> None:  # fmt: skip
        old = self.rows.get(item.segment_id) or {}
        self.rows[item.segment_id] = {
            **item.ids,
            "segment_id": item.segment_id,
            PRED_COLUMN: prediction,
            "reason": reason,
            "message": message or None,
            "cost_usd": float(old.get("cost_usd") or 0.0) + float(cost_usd),  # every attempt of every run
            "input_tokens": int(input_tokens),
            "output_tokens": int(output_tokens),
            "attempts": int(old.get("attempts") or 0) + int(attempts),
            "labeler_model": labeler_model,
            "rationale": rationale,
            "media": str(media) if media else None,
            "benchmark": self.benchmark,
            "model": model,
            "mode": mode,
            "settings": self.settings,
            "labeled_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self._since_flush += 1
        if self._since_flush >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def frame(self) -> pd.DataFrame:
        last = len(self._order)
        keys = sorted(self.rows, key=lambda k: (self._order.get(k, last), k))
        return pd.DataFrame([self.rows[k] for k in keys])

    def flush(self) -> None:
        self._since_flush = 0
        self._last_flush = time.monotonic()
        if not self.rows:
            return
        df = self.frame()
        for col in (PRED_COLUMN, "reason", "message", "labeler_model", "rationale", "media"):
            df[col] = df[col].astype("string")
        atomic.write_parquet(pa.Table.from_pandas(df, preserve_index=False), self.path, compression="snappy", unique=True)


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------- labeling


@dataclass
class LabelingSummary:
    items: int = 0
    skipped_done: int = 0
    sent: int = 0
    labeled_now: int = 0
    missing_clips: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    first_failure: str = ""
    requests: int = 0
    cost_usd_now: float = 0.0


async def _label_items(todo: list[Item], cfg: RunConfig, pool, store: PredictionStore, cache: Path,
                       summary: LabelingSummary) -> None:  # fmt: skip
    """Prepare each item's media and label it through `pool` (a session's, on the session's loop)."""
    from mikupal.labelers.requests import label_request
    from mikupal.media import duration_seconds

    lab = cfg.labeler
    prep = asyncio.Semaphore(max(1, min(4, os.cpu_count() or 1)))  # media conversion is CPU work
    progress = {"done": 0, "ok": 0}
    total = len(todo)

    def fail(item: Item, reason: str, message: str, **kw: Any) -> None:
        summary.failed[reason] = summary.failed.get(reason, 0) + 1
        summary.first_failure = summary.first_failure or f"{item.segment_id}: {reason}: {message}"
        store.put(item, reason=reason, message=message, model=lab.model, mode=lab.mode, **kw)

    async def one(item: Item) -> None:
        try:
            async with prep:
                media = await asyncio.to_thread(prepare_media, item, lab.mode, cache)
                duration = await asyncio.to_thread(duration_seconds, media) if media is not None else 0.0
        except Exception as e:  # noqa: BLE001 - one unreadable clip must not stop the run
            fail(item, MEDIA_UNREADABLE, f"{item.source}: {type(e).__name__}: {e}")
            return
        request = label_request(lab, item.segment_id, item.text, clip=media if lab.mode == "video" else None,
                                audio=media if lab.mode == "audio" else None, context=item.context,
                                duration=duration)
        res = await pool.label(request)
        res.cost_usd = res.cost_usd or 0.0  # unpriced model: the preflight warned; counted as 0 here
        summary.cost_usd_now += res.cost_usd
        if res.ok:
            ann = res.annotation
            summary.labeled_now += 1
            progress["ok"] += 1
            store.put(item, prediction=ann.primary_emotion, cost_usd=res.cost_usd, input_tokens=ann.input_tokens,
                      output_tokens=ann.output_tokens, attempts=res.attempts, labeler_model=ann.labeler_model,
                      rationale=ann.rationale, media=media, model=lab.model, mode=lab.mode)  # fmt: skip
        else:
            fail(item, res.reason or "labeler_error", res.message, cost_usd=res.cost_usd, attempts=res.attempts,
                 media=media)  # fmt: skip
        progress["done"] += 1
        if progress["done"] % 50 == 0 or progress["done"] == total:
            _say(f"  labeled {progress['ok']}/{progress['done']} of {total}  (${summary.cost_usd_now:.4f})")

    try:
        await asyncio.gather(*(one(i) for i in todo))
    finally:
        store.flush()


def label_benchmark(
    bench: Benchmark, cfg: RunConfig, output: Path, limit: Optional[int] = None
) -> tuple[PredictionStore, list[Item], LabelingSummary]:
    """Label the first `limit` items (all when None) not yet predicted in `output/predictions.parquet`."""
    from mikupal.labelers.pricing import RunCost
    from mikupal.labelers.session import LabelSession

    lab = cfg.labeler
    if lab.kind == "none":
        raise UserError("labeling the benchmark needs a labeler: labeler=gemini or labeler=openai")
    if lab.batch:
        raise UserError("labeler.batch=true is not supported here: evaluate labels live (drop labeler.batch)")
    selected = bench.items[:limit] if limit is not None else list(bench.items)
    store = PredictionStore(output / PREDICTIONS_FILE, bench, run_settings(cfg, bench.taxonomy))
    summary = LabelingSummary(items=len(selected))
    todo: list[Item] = []
    for item in selected:
        if store.done(item.segment_id):
            summary.skipped_done += 1
        elif bench.needs_media and item.source is None:
            summary.missing_clips += 1
            store.put(item, reason=MISSING_CLIP, message=f"no clip: {item.expected}", model=lab.model, mode=lab.mode)
        else:
            todo.append(item)
    summary.sent = len(todo)
    if summary.missing_clips:
        _say(f"{summary.missing_clips} of {len(selected)} items have no clip (e.g. {_first_missing(selected, store)})")
    if not todo:
        _say(f"nothing to label: {summary.skipped_done} of {len(selected)} items already predicted in {store.path}")
        store.flush()
        return store, selected, summary
    from mikupal.labelers.preflight import preflight

    preflight(lab)  # key accepted, model served, price known for max_usd: before any request
    stats = RunCost(model=lab.model)
    _say(f"labeling {len(todo)} {bench.desc} items with {lab.model} ({lab.mode} mode, labels: "
         f"{', '.join(bench.taxonomy.names())}; {summary.skipped_done} already done) -> {store.path}")  # fmt: skip
    with LabelSession.open(lab, bench.taxonomy, stats=stats) as session:
        session.run(_label_items(todo, cfg, session.pool, store, output / MEDIA_DIR, summary))
    summary.requests = stats.requests
    _say(stats.summary())
    if summary.failed:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(summary.failed.items()))
        _say(f"{sum(summary.failed.values())} items failed ({reasons}); run the same command again to retry them")
    return store, selected, summary


def _first_missing(selected: Sequence[Item], store: PredictionStore) -> str:
    for item in selected:
        row = store.rows.get(item.segment_id)
        if row and row.get("reason") == MISSING_CLIP:
            return item.expected
    return ""


# ---------------------------------------------------------------- label + score


def label_and_evaluate(
    bench: Benchmark,
    cfg: RunConfig,
    output: Path,
    limit: Optional[int] = None,
    labels: Optional[Sequence[str]] = None,
    exclude: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """Label (resumably), then score the predictions of the selected items against their gold labels.

    The result is `metrics.evaluate`'s dict (n = the labeled items) plus `cost_usd` (everything
    spent on the selected items, all runs), `n_missing_clips` and a `labeling` block."""
    from mikupal.evaluate import metrics

    if limit is not None and limit < 1:
        raise UserError(f"limit must be >= 1, got {limit}")
    store, selected, summary = label_benchmark(bench, cfg, output, limit)
    ids = {i.segment_id for i in selected}
    frame = store.frame()
    frame = frame[frame["segment_id"].isin(ids)]
    predicted = frame[frame[PRED_COLUMN].notna()]
    if predicted.empty:
        hint = summary.first_failure or (f"no clip found, e.g. {_first_missing(selected, store)}"
                                         if summary.missing_clips else "")  # fmt: skip
        raise UserError(f"no item of {bench.desc} could be labeled ({len(selected)} tried): {hint}")
    cols = bench.id_columns
    chosen = pd.DataFrame([i.ids for i in selected], columns=cols)
    wanted = set(zip(*(metrics.id_strings(chosen[c]) for c in cols)))
    gold = bench.gold
    gold = gold[[k in wanted for k in zip(*(metrics.id_strings(gold[c]) for c in cols))]]
    if labels is None:  # the closed set the labeler chose from (+ any gold label outside it)
        names = [n.lower() for n in bench.taxonomy.names()]
        extra = sorted({str(x).strip().lower() for x in gold[bench.gold_column].dropna()} - set(names))
        labels = names + extra
    result = metrics.evaluate(
        predicted, gold, bench.id_columns, PRED_COLUMN, bench.gold_column, labels=labels,
        exclude=metrics.EXCLUDED_LABELS if exclude is None else exclude, output_dir=output,
    )  # fmt: skip
    reasons = frame.loc[frame[PRED_COLUMN].isna(), "reason"].fillna("unknown").value_counts()
    result["cost_usd"] = round(float(frame["cost_usd"].fillna(0.0).sum()), 8)
    result["n_missing_clips"] = int((frame["reason"] == MISSING_CLIP).sum()) if bench.needs_media else 0
    result["labeling"] = {
        "benchmark": bench.desc,
        "model": cfg.labeler.model,
        "mode": cfg.labeler.mode,
        "prompt_version": cfg.labeler.prompt_version,
        "labels": bench.taxonomy.names(),
        "items": len(selected),
        "labeled": int(len(predicted)),
        "unlabeled": {str(k): int(v) for k, v in reasons.items()},
        "labeled_this_run": summary.labeled_now,
        "skipped_already_labeled": summary.skipped_done,
        "requests_this_run": summary.requests,
        "cost_usd_this_run": round(summary.cost_usd_now, 8),
        "predictions": str(store.path),
    }
    return result
