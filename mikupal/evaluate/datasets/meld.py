"""MELD (Poria et al., 2019) annotation tables: `{train,dev,test}_sent_emo.csv`.

Quirks handled here:
- quoted fields containing commas and quotes (read with a real CSV parser);
- timestamps `H:MM:SS,mmm` with or without a leading zero (`0:10:44,769`, `00:14:38,127`) -> seconds;
- typographic apostrophes, quotes, dashes and ellipses (about 28% of utterances), sometimes as
  mojibake (`â€™` is a UTF-8 `’` read as cp1252): `text` is repaired and normalised to ASCII
  punctuation, `text_raw` keeps the field exactly as in the file;
- clips are named `dia{D}_utt{U}.mp4`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd
import pyarrow as pa

from mikupal.records import Record

SPLITS = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
_SPLIT_ALIASES = {"val": "dev", "valid": "dev", "validation": "dev"}
ID_COLUMNS = ("dialogue_id", "utterance_id")
LABEL_COLUMN = "emotion"
_CSV_COLUMNS = {
    "Sr No.": "sr_no",
    "Utterance": "text_raw",
    "Speaker": "speaker",
    "Emotion": "emotion",
    "Sentiment": "sentiment",
    "Dialogue_ID": "dialogue_id",
    "Utterance_ID": "utterance_id",
    "Season": "season",
    "Episode": "episode",
    "StartTime": "start",
    "EndTime": "end",
}


class MeldUtterance(Record):
    dialogue_id: int
    utterance_id: int
    speaker: str
    text: str  # repaired, ASCII punctuation
    text_raw: str  # as in the CSV
    emotion: str
    sentiment: str
    start: float  # seconds into the episode
    end: float
    clip: str  # dia{D}_utt{U}.mp4
    season: int
    episode: int
    sr_no: int
    split: str = ""


# ---------------------------------------------------------------- field parsers

_TIMESTAMP = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,6}))?\s*$")


def parse_timestamp(value: str) -> float:
    """`0:10:44,769` or `00:14:38,127` (SRT style, comma or dot before the fraction) -> seconds."""
    m = _TIMESTAMP.match(str(value))
    if not m:
        raise ValueError(f"not a timestamp like 0:10:44,769: {value!r}")
    h, mnt, s, frac = m.groups()
    seconds = int(h) * 3600 + int(mnt) * 60 + int(s) + (int(frac) / 10 ** len(frac) if frac else 0.0)
    return round(seconds, 6)


# Runs of characters that cp1252/latin-1 decoding of UTF-8 bytes produces (â€™, Ã©, ...).
_MOJIBAKE_RUN = re.compile(
    "[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{2,}"
)
_C1 = re.compile("[\u0080-\u009f]")
_ASCII_PUNCT = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
        "\u2014": "--", "\u2015": "--",
        "\u2026": "...",
        "\u00a0": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u200b": "",
    }
)  # fmt: skip


def _byte(c: str) -> bytes:
    try:
        return c.encode("cp1252")
    except UnicodeEncodeError:
        if ord(c) < 256:  # C1 controls cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d)
            return bytes([ord(c)])
        raise


def _unmojibake(run: re.Match) -> str:
    s = run.group(0)
    try:
        return b"".join(_byte(c) for c in s).decode("utf-8")
    except UnicodeError:
        return s  # genuine non-ASCII text (e.g. "’—"), not mojibake


def _c1_to_cp1252(m: re.Match) -> str:
    try:
        return bytes([ord(m.group(0))]).decode("cp1252")
    except UnicodeDecodeError:
        return ""


def clean_text(raw: str) -> str:
    """Repair mojibake, then write typographic quotes, dashes and ellipses as ASCII."""
    text = _MOJIBAKE_RUN.sub(_unmojibake, raw)
    text = _C1.sub(_c1_to_cp1252, text)  # stray cp1252 bytes read as latin-1, e.g. "\x92"
    return text.translate(_ASCII_PUNCT).strip()


def clip_name(dialogue_id: int, utterance_id: int) -> str:
    return f"dia{dialogue_id}_utt{utterance_id}.mp4"


# ---------------------------------------------------------------- reading


def meld_csv(source: str | Path, split: Optional[str] = None) -> Path:
    """The CSV of `split` under a MELD folder, or `source` itself when it is a file."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if split is None:
        raise ValueError(f"{path} is not a file; name a split ({', '.join(SPLITS)})")
    key = _SPLIT_ALIASES.get(split.lower(), split.lower())
    if key not in SPLITS:
        raise ValueError(f"unknown MELD split {split!r}; expected one of {list(SPLITS)}")
    candidates = [path / SPLITS[key], path / "data" / "MELD" / SPLITS[key]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"MELD {key} split not found: no {candidates[0]}")


def _read_csv(path: Path) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: neither UTF-8 nor cp1252 text")  # pragma: no cover - cp1252 accepts most bytes


def read_meld(source: str | Path, split: Optional[str] = None) -> list[MeldUtterance]:
    """Read one MELD split (a folder plus `split`, or a CSV path) into typed rows in file order."""
    path = meld_csv(source, split)
    df = _read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in _CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a MELD table, missing columns {missing}")
    split_name = split or next((k for k, v in SPLITS.items() if v == path.name), "")
    rows = []
    for i, rec in enumerate(df[list(_CSV_COLUMNS)].rename(columns=_CSV_COLUMNS).to_dict("records")):
        try:
            d, u = int(rec["dialogue_id"]), int(rec["utterance_id"])
            rows.append(
                MeldUtterance(
                    dialogue_id=d,
                    utterance_id=u,
                    speaker=rec["speaker"].strip(),
                    text=clean_text(rec["text_raw"]),
                    text_raw=rec["text_raw"],
                    emotion=rec["emotion"].strip().lower(),
                    sentiment=rec["sentiment"].strip().lower(),
                    start=parse_timestamp(rec["start"]),
                    end=parse_timestamp(rec["end"]),
                    clip=clip_name(d, u),
                    season=int(rec["season"]),
                    episode=int(rec["episode"]),
                    sr_no=int(rec["sr_no"]),
                    split=split_name,
                )
            )
        except ValueError as e:
            raise ValueError(f"{path}: data row {i + 1}: {e}") from None
    return rows


def meld_table(rows: Sequence[MeldUtterance]) -> pa.Table:
    return MeldUtterance.to_table(rows)


def meld_frame(source: str | Path, split: Optional[str] = None) -> pd.DataFrame:
    """The split as a DataFrame (columns of `MeldUtterance`), e.g. as gold for `metrics.evaluate`."""
    return meld_table(read_meld(source, split)).to_pandas()


# ---------------------------------------------------------------- dialogue context


def with_context(
    rows: Iterable[MeldUtterance], max_turns: Optional[int] = None
) -> list[tuple[MeldUtterance, list[MeldUtterance]]]:
    """Each utterance with the earlier utterances of its dialogue (oldest first, at most `max_turns`)."""
    from mikupal.labelers.requests import earlier_turns

    rows = list(rows)
    earlier = earlier_turns(rows, max_turns, dialogue=lambda r: r.dialogue_id, order=lambda r: r.utterance_id)
    return list(zip(rows, earlier))


def speaker_line(row: MeldUtterance) -> str:
    """One turn of a text-only labeling prompt's context: `Speaker: text`."""
    return f"{row.speaker}: {row.text}"


def format_context(previous: Sequence[MeldUtterance]) -> str:
    """Previous turns as a transcript for a text-only labeling prompt: one `Speaker: text` per line."""
    return "\n".join(speaker_line(r) for r in previous)
