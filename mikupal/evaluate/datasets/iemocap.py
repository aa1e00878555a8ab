"""IEMOCAP (Busso et al., 2008) from its release layout:

    Session{1-5}/dialog/EmoEvaluation/<dialog>.txt      `[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]`
    Session{1-5}/dialog/transcriptions/<dialog>.txt     `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
    Session{1-5}/sentences/wav/<dialog>/<utterance>.wav
    Session{1-5}/dialog/avi/DivX/<dialog>.avi

Label codes map to the `iemocap` taxonomy; `xxx` (no annotator majority) has no label.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa

from mikupal.records import Record

ID_COLUMNS = ("utterance_id",)
LABEL_COLUMN = "emotion"
CODES = {
    "neu": "neutral",
    "hap": "happy",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "exc": "excited",
    "fea": "fearful",
    "sur": "surprised",
    "dis": "disgusted",
    "oth": "other",
    "xxx": None,
}

_EVAL_LINE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\w+)\s+(\w+)\s+\[\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)\s*\]"
)
_TRANSCRIPT_LINE = re.compile(r"^(Ses\S+)\s+\[[^\]]*\]:\s?(.*)$")


class IemocapUtterance(Record):
    utterance_id: str  # Ses01F_impro01_F000
    dialog: str  # Ses01F_impro01
    session: int
    speaker: str  # Ses01F: session and the speaker's gender letter
    mode: str  # "improvised" | "scripted"
    start: float
    end: float
    code: str  # neu, hap, ..., xxx
    emotion: Optional[str]  # the iemocap taxonomy label; None for xxx
    valence: float
    activation: float
    dominance: float
    text: str  # "" when the transcript is missing
    wav_path: str  # relative to the IEMOCAP root
    avi_path: str


def _transcripts(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _TRANSCRIPT_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def read_iemocap(
    root: str | Path, sessions: Optional[list[int]] = None, keep_unlabeled: bool = False
) -> list[IemocapUtterance]:
    """All utterances with a categorical label (plus `xxx` ones when `keep_unlabeled`), session order."""
    root = Path(root).expanduser()
    session_dirs = sorted(root.glob("Session[1-5]"))
    if sessions:
        session_dirs = [d for d in session_dirs if int(d.name[-1]) in sessions]
    if not session_dirs:
        raise ValueError(f"{root}: no Session1..Session5 folders (not an IEMOCAP release root)")
    rows: list[IemocapUtterance] = []
    for session_dir in session_dirs:
        session = int(session_dir.name[-1])
        for eval_file in sorted((session_dir / "dialog" / "EmoEvaluation").glob("*.txt")):
            if eval_file.name.startswith("."):  # macOS resource forks (._Ses01F_impro01.txt)
                continue
            dialog = eval_file.stem
            text = _transcripts(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt")
            for n, line in enumerate(eval_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                m = _EVAL_LINE.match(line.strip())
                if not m:
                    continue  # headers, per-annotator lines ("C-E1:\t...") and blanks
                start, end, utt, code, val, act, dom = m.groups()
                if code not in CODES:
                    raise ValueError(f"{eval_file}:{n}: unknown emotion code {code!r} (known: {sorted(CODES)})")
                if CODES[code] is None and not keep_unlabeled:
                    continue
                rows.append(
                    IemocapUtterance(
                        utterance_id=utt,
                        dialog=dialog,
                        session=session,
                        speaker=utt[:5] + utt.rsplit("_", 1)[-1][0],
                        mode="improvised" if "_impro" in dialog else "scripted",
                        start=float(start),
                        end=float(end),
                        code=code,
                        emotion=CODES[code],
                        valence=float(val),
                        activation=float(act),
                        dominance=float(dom),
                        text=text.get(utt, ""),
                        wav_path=f"{session_dir.name}/sentences/wav/{dialog}/{utt}.wav",
                        avi_path=f"{session_dir.name}/dialog/avi/DivX/{dialog}.avi",
                    )
                )
    return rows


def iemocap_table(rows: list[IemocapUtterance]) -> pa.Table:
    return IemocapUtterance.to_table(rows)


def iemocap_frame(root: str | Path, sessions: Optional[list[int]] = None) -> pd.DataFrame:
    return iemocap_table(read_iemocap(root, sessions)).to_pandas()
