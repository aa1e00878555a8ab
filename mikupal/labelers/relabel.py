"""What `mikupal label input=OUT` labels, and where its results go.

To label (default):
  - `segments/<video>.parquet` rows whose `primary_emotion` is null (labeler=none, batch mode, or a
    run that stopped on a labeler failure before the rows were committed labeled);
  - `labeler/pending/<video>.parquet` rows: segments whose final state is a labeler reject
    (safety block, a refused request, invalid answers ...). The run keeps their dataset row there,
    and their clip and audio files under clips/ and audio/, exactly so they can be labeled again.
    This works when no segment was kept at all.
  Labeled rows are filled in place (segments/) or moved from labeler/pending/ into
  segments/<video>.parquet; their label reject leaves rejects/<video>.parquet and the video's commit
  marker counts them as kept. Every file is rewritten atomically (tmp + os.replace) as soon as its
  rows are done: an interrupted run loses nothing, and a re-run labels only what is left.

`labeler.relabel=true` (`mikupal label --relabel`): label every kept and pending segment again,
typically with another model or prompt version, and keep both results apart: the new annotations go
to `labels/<model>__<prompt_version>/<video>.parquet` (segment_id, video_id and the annotation
columns); segments/ is not touched. Resumable: ids already in that folder are skipped.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import atomic
from .. import layout
from ..committed import VideoSummary
from ..describe import describe_columns
from ..layout import OutputPaths
from ..config import RunConfig
from ..errors import UserError
from .base import LabelRequest
from .requests import context_turns, label_request

REQUIRED = ("segment_id", "text", "clip_path", "audio_path", "primary_emotion", "emotions")


def _atomic(table: pa.Table, path: Path) -> None:
    atomic.write_parquet(table, path, compression="snappy", unique=True)


def _filled(rows: list[dict[str, Any]], names: set[str], done: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        ann = done.get(row["segment_id"])
        if ann is not None:
            row = dict(row)
            row.update({k: v for k, v in ann.row_columns().items() if k in names})
            row.update({k: v for k, v in describe_columns(row).items() if k in names})  # a gender heard now
        out.append(row)
    return out


def rewrite_parquet(path: Path, table: pa.Table, done: dict[str, Any]) -> int:
    """Fill the annotation columns of the rows in `done` (segment_id -> annotation); atomic."""
    rows = table.to_pylist()
    n = sum(1 for r in rows if r["segment_id"] in done)
    if n:
        _atomic(pa.Table.from_pylist(_filled(rows, set(table.schema.names), done), schema=table.schema), path)
    return n


def relabel_tag(cfg: RunConfig) -> str:
    """The folder name of a relabel output: model and prompt version, filesystem-safe."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{cfg.labeler.model}__{cfg.labeler.prompt_version}")


class LabelDataset:
    """The rows of an output dir to label, by file (segments/ or labeler/pending/), and how to
    write their results back (see the module doc)."""

    def __init__(self, root: Path, cfg: RunConfig):
        self.root = root
        self.paths = OutputPaths(root)
        self.cfg = cfg
        self.relabel = cfg.labeler.relabel
        seg_files = sorted(self.paths.dir(layout.SEGMENTS).glob("*.parquet"))
        pending_files = sorted(self.paths.dir(layout.PENDING).glob("*.parquet"))
        if not seg_files and not pending_files and not self.paths.dir(layout.DONE).is_dir():
            raise UserError(f"input={root}: no segments/*.parquet here (is it a mikupal output dir?)")
        self.tables: dict[Path, pa.Table] = {}
        # a video's rows may come from two files (segments/ and labeler/pending/) labeled at once:
        # their results are written one at a time, each from the file as it is now
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.todo: dict[Path, list[dict[str, Any]]] = {}
        kept: set[str] = set()
        all_rows: list[dict[str, Any]] = []
        done_before = self._relabeled() if self.relabel else set()
        for f in seg_files + pending_files:
            table = self._read(f)
            self.tables[f] = table
            rows = table.to_pylist()
            is_pending = f.parent == self.paths.dir(layout.PENDING)
            if is_pending:  # a crash between moving a row and dropping it here: it is kept already
                rows = [r for r in rows if r["segment_id"] not in kept]
            else:
                kept.update(r["segment_id"] for r in rows)
            all_rows.extend(rows)
            if self.relabel:
                self.todo[f] = [r for r in rows if r["segment_id"] not in done_before]
            else:
                self.todo[f] = rows if is_pending else [r for r in rows if r.get("primary_emotion") is None]
        self.total = len(all_rows)
        self._context = self._contexts(all_rows, cfg)

    @staticmethod
    def _read(f: Path) -> pa.Table:
        try:
            table = pq.read_table(f)
        except (OSError, pa.ArrowInvalid) as e:
            raise UserError(f"cannot read {f}: {e}") from None
        missing = [c for c in REQUIRED if c not in table.schema.names]
        if missing:
            raise UserError(f"{f}: not a segments file (missing columns {missing})")
        return table

    def _relabeled(self) -> set[str]:
        folder = self.paths.labels(relabel_tag(self.cfg))
        ids: set[str] = set()
        for f in folder.glob("*.parquet"):
            ids.update(pq.read_table(f, columns=["segment_id"]).column("segment_id").to_pylist())
        return ids

    @staticmethod
    def _contexts(rows: list[dict[str, Any]], cfg: RunConfig) -> dict[str, list[str]]:
        n = cfg.labeler.context_turns if cfg.labeler.mode == "text" else 0
        turns = context_turns(rows, n, dialogue=lambda r: str(r.get("video_id", "")),
                              order=lambda r: r.get("start") or 0.0, line=lambda r: r.get("text") or "")
        return {r["segment_id"]: t for r, t in zip(rows, turns) if t}

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self.todo.values())

    def request(self, row: dict[str, Any]) -> LabelRequest:
        return label_request(self.cfg.labeler, row["segment_id"], row.get("text"), root=self.root,
                             clip=row.get("clip_path"), audio=row.get("audio_path"),
                             context=self._context.get(row["segment_id"], []), duration=row.get("duration"),
                             start=row.get("start"), end=row.get("end"))

    # ------------------------------------------------------------ results

    def apply(self, path: Path, done: dict[str, Any]) -> int:
        """Write the annotations of one file's labeled rows (segment_id -> annotation)."""
        if not done:
            return 0
        with self._locks[path.stem]:
            if self.relabel:
                return self._write_relabel(path, done)
            if path.parent == self.paths.dir(layout.PENDING):
                return self._promote(path, done)
            return rewrite_parquet(path, pq.read_table(path), done)

    def _write_relabel(self, path: Path, done: dict[str, Any]) -> int:
        rows = [r for r in self.tables[path].to_pylist() if r["segment_id"] in done]
        out = [{"segment_id": r["segment_id"], "video_id": r.get("video_id")}
               | done[r["segment_id"]].row_columns() for r in rows]
        target = self.paths.labels(relabel_tag(self.cfg)) / path.name
        table = pa.Table.from_pylist(out)
        if target.is_file():
            old = pq.read_table(target)
            table = pa.concat_tables([old, table.cast(old.schema)])
        _atomic(table, target)
        return len(out)

    def _promote(self, path: Path, done: dict[str, Any]) -> int:
        """Labeled pending rows -> segments/<video>.parquet; then out of pending/ and rejects/, into the marker."""
        table = self.tables[path]
        rows = table.to_pylist()
        moved = [r for r in _filled(rows, set(table.schema.names), done) if r["segment_id"] in done]
        seg_path = self.paths.dir(layout.SEGMENTS) / path.name
        new = pa.Table.from_pylist(moved, schema=table.schema)
        if seg_path.is_file():
            old = pq.read_table(seg_path)
            old = old.filter(pc.invert(pc.is_in(old.column("segment_id"), value_set=new.column("segment_id"))))
            new = pa.concat_tables([old, new.cast(old.schema)])
        _atomic(new.sort_by("start"), seg_path)
        left = [r for r in rows if r["segment_id"] not in done]
        if left:
            self.tables[path] = pa.Table.from_pylist(left, schema=table.schema)
            _atomic(self.tables[path], path)
        else:
            path.unlink(missing_ok=True)
        self._drop_rejects(path.stem, set(done))
        self._count_kept(path.stem, moved)
        return len(moved)

    def _drop_rejects(self, key: str, ids: set[str]) -> None:
        path = self.paths.rejects(key)
        if not path.is_file():
            return
        rows = [r for r in pq.read_table(path).to_pylist() if not (r["item_id"] in ids and r["stage"] == "label")]
        if rows:
            _atomic(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
        else:
            path.unlink()

    def _count_kept(self, key: str, rows: list[dict[str, Any]]) -> None:
        """The commit marker counts the newly kept segments (report.json is rebuilt from markers)."""
        marker = self.paths.marker(key)
        if not marker.is_file():
            return
        s = VideoSummary.model_validate_json(marker.read_text(encoding="utf-8"))
        seconds = sum(float(r.get("duration") or 0.0) for r in rows)
        s.kept += len(rows)
        s.kept_seconds += seconds
        s.rejects = max(0, s.rejects - len(rows))
        costs = [r.get("cost_usd") for r in rows]
        s.cost_usd = None if s.cost_usd is None or any(c is None for c in costs) else s.cost_usd + sum(costs)
        s.input_tokens += sum(int(r.get("input_tokens") or 0) for r in rows)
        s.output_tokens += sum(int(r.get("output_tokens") or 0) for r in rows)
        s.primary_emotions.extend(r["primary_emotion"] for r in rows if r.get("primary_emotion"))
        for f in s.funnel:
            if f.stage == "label":
                f.count += len(rows)
                f.seconds += seconds
        atomic.write_text(marker, s.model_dump_json())
