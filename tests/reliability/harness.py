"""What the reliability tests share: run overrides, the CLI in a subprocess, an output snapshot to
compare a faulted-then-resumed run with a clean one, and the case table (CASES.md) built from the
outcomes the tests actually observed."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from mikupal.engine.commit import OutputDir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TABLE_MD = HERE / "CASES.md"
TABLE_JSON = HERE / "cases.json"
SECTIONS = ("inputs", "faults", "security")


def overrides(models_dir: Path, out: Path, inp: Path, *extra: str) -> list[str]:
    return [
        f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
        "asr.model=tiny.en", "offline=true", "engine.progress=false",
        # the hostile inputs and fault sets are re-encodings of a few clips: copies by construction
        # (the duplicate check has its own pipeline test, tests/integration/test_duplicates_pipeline.py)
        "duplicates.kind=none", *extra,
    ]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", HF_HUB_OFFLINE="1", MIKUPAL_OFFLINE="1", **extra)
    env.pop("RAY_ADDRESS", None)
    return env


def start_cli(args: list[str], env: Optional[dict[str, str]] = None, command: str = "run") -> subprocess.Popen:
    """`python -m mikupal.cli run ...` in its own session (a signal to it reaches the driver only)."""
    return subprocess.Popen([sys.executable, "-m", "mikupal.cli", command, *args], env=env or cli_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def run_cli(args: list[str], env: Optional[dict[str, str]] = None, timeout: float = 600) -> tuple[int, str, str]:
    p = start_cli(args, env)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


KEY = "AIza-reliability-env-key-0123456789"
FILE_KEY = "AIza-reliability-file-key-9876543210"
MAX_RETRIES, INVALID_RETRIES = 2, 1
#: the prompt the fault runs label with: the fault plan is replayed against its request texts (v1's
#: user turn holds only the transcript; v2's also the clip's duration)
FAULT_PROMPT = "v1"
LABELER = ("labeler=gemini", f"labeler.prompt_version={FAULT_PROMPT}", "labeler.timeout_s=1.0", "labeler.backoff_base_s=0.02", "labeler.backoff_max_s=0.2",
           f"labeler.max_retries={MAX_RETRIES}", f"labeler.invalid_retries={INVALID_RETRIES}")
FAULT_KINDS = ("rate_limit", "server_error", "slow", "invalid_json")
#: what a labeled utterance may legitimately differ in after faults: the retries it paid for
BILLING = ("cost_usd", "input_tokens", "output_tokens")


def fault_seed(transcripts: list[str], rate: float = 0.3, limit: int = 200_000) -> tuple[int, dict[str, list]]:
    """The first FaultPlan seed under which, at `rate`, the labeling of these utterances meets each
    fault kind, labels one utterance after a fault and rejects another (its retries exhausted), by
    replaying the fake's deterministic plan against the pool's retry policy. Returns the seed and
    each transcript's simulated sequence of outcomes."""
    from mikupal.labelers.prompt import load_prompt
    from mikupal.taxonomy import load_taxonomy
    from tests.fakes import FaultPlan

    prompt = load_prompt(FAULT_PROMPT, load_taxonomy("cowen_keltner_26"), "video")
    keys = [prompt.user_text(t) for t in transcripts]
    for seed in range(limit):
        plan = FaultPlan(rate=rate, seed=seed, kinds=FAULT_KINDS)
        seqs, kinds, labeled_after_fault, rejected = {}, set(), False, False
        for t, key in zip(transcripts, keys):
            transient, invalid, seq = MAX_RETRIES, INVALID_RETRIES, []
            for n in range(1 + MAX_RETRIES + INVALID_RETRIES):
                fault = plan.pick(key, n)
                seq.append(fault or "ok")
                if fault is None:
                    labeled_after_fault |= n > 0
                    break
                kinds.add(fault)
                if fault == "invalid_json":
                    invalid -= 1
                else:
                    transient -= 1
                if invalid < 0 or transient < 0:
                    rejected = True
                    break
            seqs[t] = seq
        if kinds == set(FAULT_KINDS) and labeled_after_fault and rejected:
            return seed, seqs
    raise AssertionError("no fault seed exercises every kind")


class Captured:
    """Everything mikupal logged (DEBUG and up) and printed while it is active."""

    def __enter__(self):
        self.buf = io.StringIO()
        self.handler = logging.StreamHandler(self.buf)
        self.handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)
        self.out = contextlib.redirect_stdout(self.buf)
        self.err = contextlib.redirect_stderr(self.buf)
        self.out.__enter__()
        self.err.__enter__()
        return self

    def __exit__(self, *exc):
        self.err.__exit__(*exc)
        self.out.__exit__(*exc)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)

    @property
    def text(self) -> str:
        return self.buf.getvalue()


def markers(out: Path) -> list[Path]:
    return sorted((out / ".state" / "done").glob("*.json"))


# ---------------------------------------------------------------- output snapshots


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 3)
    if isinstance(v, list):
        return [_round(x) for x in v]
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def snapshot(out: Path, videos: Optional[set[str]] = None) -> dict[str, Any]:
    """Everything a user reads from an output dir, in a comparable form: kept rows (floats to 1e-3),
    reject rows (their messages aside: they may quote scores), which videos are done and final,
    and the media files (audio by content, clips by name). `videos` restricts it to those ids."""
    od = OutputDir(out)
    seg = [r for r in od.read_segments().to_pylist() if videos is None or r["video_id"] in videos]
    rej = [r for r in od.read_rejects().to_pylist() if videos is None or r["video_id"] in videos or r["item_id"] in videos]
    done = {s.key: s.final for s in od.summaries() if videos is None or s.key in videos}
    files: dict[str, str] = {}
    for sub in ("audio", "clips"):
        for p in sorted((out / sub).rglob("*")):
            if p.is_file() and (videos is None or p.parent.name in videos):
                rel = str(p.relative_to(out))
                files[rel] = hashlib.sha1(p.read_bytes()).hexdigest() if sub == "audio" else "clip"
    return {
        "segments": sorted((_round(r) for r in seg), key=lambda r: r["segment_id"]),
        "rejects": sorted(({k: _round(v) for k, v in r.items() if k != "message"} for r in rej),
                          key=lambda r: (r["item_id"], r["stage"], r["reason"])),
        "done": done,
        "files": files,
    }


def diff(a: dict[str, Any], b: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal), `ignore`d columns aside."""
    if ignore:
        a, b = ({**s, "segments": [{k: v for k, v in r.items() if k not in ignore} for r in s["segments"]]}
                for s in (a, b))
    out = []
    for key in ("done", "files"):
        if a[key] != b[key]:
            ka, kb = set(a[key].items()), set(b[key].items())
            out.append(f"{key}: only in first {sorted(ka - kb)[:5]}, only in second {sorted(kb - ka)[:5]}")
    for key, idk in (("segments", "segment_id"), ("rejects", "item_id")):
        ra, rb = a[key], b[key]
        if ra != rb:
            ia, ib = [r[idk] for r in ra], [r[idk] for r in rb]
            if ia != ib:
                out.append(f"{key}: ids differ: {sorted(set(ia) ^ set(ib))[:6]}")
            else:
                for x, y in zip(ra, rb):
                    if x != y:
                        cols = [c for c in x if x.get(c) != y.get(c)]
                        out.append(f"{key} {x[idk]}: columns differ {cols}")
    return out


def is_video_level(reject: dict[str, Any]) -> bool:
    """A reject of a whole input (input, probe, VAD ...) rather than of one utterance of it."""
    return reject.get("start") is None


# ---------------------------------------------------------------- the case table

_RESULTS: list[dict[str, Any]] = []


def record(section: str, case: str, title: str, expected: str, observed: str, ok: bool,
           seconds: Optional[float] = None) -> None:
    """Note one case's outcome as observed by a test; written to CASES.md when the session ends."""
    assert section in SECTIONS
    _RESULTS.append({
        "section": section, "case": case, "title": title, "expected": expected, "observed": observed,
        "ok": bool(ok), "seconds": None if seconds is None else round(float(seconds), 1),
        "date": _dt.date.today().isoformat(),
    })


def write_table() -> Optional[Path]:
    """Merge this session's outcomes into cases.json (by section and case) and render CASES.md."""
    if not _RESULTS:
        return None
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if TABLE_JSON.is_file():
        try:
            for r in json.loads(TABLE_JSON.read_text(encoding="utf-8")):
                rows[(r["section"], r["case"])] = r
        except (ValueError, KeyError):
            rows = {}
    for r in _RESULTS:
        rows[(r["section"], r["case"])] = r
    ordered = sorted(rows.values(), key=lambda r: (SECTIONS.index(r["section"]), r["case"]))
    TABLE_JSON.write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# Reliability cases",
        "",
        "Generated by the tests in `tests/reliability/` from what each run actually produced (never typed in):",
        "`python -m pytest tests/reliability -m 'slow or not slow'` rewrites the rows of the cases it runs.",
        "`expected` is what the test asserts; `observed` is the outcome it saw; `seconds` is the case's wall time",
        "where it has its own run. Do not edit: re-run the tests.",
        "",
    ]
    for section in SECTIONS:
        sec = [r for r in ordered if r["section"] == section]
        if not sec:
            continue
        lines += [f"## {section}", "", "| case | what | expected | observed | ok | seconds | run on |",
                  "|---|---|---|---|---|---|---|"]
        for r in sec:
            cells = [r["case"], r["title"], r["expected"], r["observed"], "yes" if r["ok"] else "**NO**",
                     "" if r["seconds"] is None else f"{r['seconds']:g}", r["date"]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines.append("")
    TABLE_MD.write_text("\n".join(lines), encoding="utf-8")
    return TABLE_MD
