"""Every command the docs show runs as written.

- The shell blocks of docs/*.md run with bash, exactly as printed, against a fake Gemini server
  (real SDK over HTTP) and a MELD folder made of the shared CSVs and a few generated clips: the
  paths the docs use for the user's data (/data/MELD.Raw) are the only thing replaced.
- Every `mikupal ...` command written inline in README.md and docs/ names a command that exists,
  flags it takes and keys it knows (placeholders such as `OUT` and `...` stand for the user's values).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes import FakeGemini, make_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KEY = "AIza-docs-commands"
#: what the docs call the user's MELD folder
MELD_IN_DOCS = "/data/MELD.Raw"


def shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell)\n(.*?)```", path.read_text(), re.S)


@pytest.fixture
def meld(tmp_path, shared):
    csvs = shared / "data" / "meld"
    if not (csvs / "test_sent_emo.csv").is_file():
        pytest.skip("the MELD CSVs are only in ../shared")
    d = tmp_path / "MELD.Raw"
    d.mkdir()
    for f in csvs.glob("*.csv"):
        (d / f.name).symlink_to(f)
    clips = d / "output_repeated_splits_test"
    for u in range(3):  # the first three test utterances have clips; the others are recorded missing_clip
        make_clip(clips / f"dia0_utt{u}.mp4", seconds=1.0, seed=u)
    return d


def _shim(tmp_path: Path) -> Path:
    """`mikupal` on PATH, as an installed package provides it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "mikupal"
    exe.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mikupal.cli \"$@\"\n")
    exe.chmod(0o755)
    return bin_dir


def test_the_evaluation_recipes_run_as_written(tmp_path, meld):
    work = tmp_path / "work"
    work.mkdir()
    gold = (meld / "test_sent_emo.csv").read_text(encoding="utf-8").splitlines()[1:21]
    rows = [r for r in __import__("csv").reader(gold)]
    (work / "my_preds.csv").write_text("dialogue_id,utterance_id,label\n" + "".join(
        f"{r[5]},{r[6]},{r[3]}\n" for r in rows), encoding="utf-8")
    blocks = [b for b in shell_blocks(ROOT / "docs" / "evaluation.md") if "mikupal " in b]
    assert len(blocks) >= 3
    with FakeGemini(api_key=KEY) as srv:
        env = {**os.environ, "PATH": f"{_shim(tmp_path)}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
               "GOOGLE_GEMINI_BASE_URL": srv.url}
        for block in blocks:
            script = block.replace(MELD_IN_DOCS, str(meld)).replace("GEMINI_API_KEY=...", f"GEMINI_API_KEY={KEY}")
            if "GEMINI_API_KEY=" not in script:
                script = f"export GEMINI_API_KEY={KEY}\n{script}"
            r = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                               timeout=600)
            assert r.returncode == 0, (block, r.stderr[-3000:])
        labeled = [e for e in srv.log if e.get("outcome") == "ok"]
    assert (work / "eval" / "metrics.json").is_file()
    assert (work / "runs" / "agreement" / "agreement.json").is_file()
    assert len(labeled) == 3 * 6  # 3 clips: the limit=50 trial and the five seeded runs


#: flags each command takes
FLAGS = {"run": {"-m", "--multirun", "--dry-run", "--json"}, "label": {"--relabel"}, "models": {"--labeler"}}
PLACEHOLDER = re.compile(r"^(\.\.\.|[A-Z_]+|\$\w+)$")


def inline_commands() -> list[tuple[str, str]]:
    out = []
    for path in DOCS:
        for span in re.findall(r"`(mikupal [a-z-]+[^`]*)`", path.read_text()):
            out.append((path.name, span))
    return out


def _problems(span: str) -> list[str]:
    from mikupal.cli import COMMANDS, _module
    from mikupal.config import known_keys

    words = span.replace("[", " ").replace("]", " ").split()
    cmd = words[1]
    if cmd.startswith("-"):
        return [] if cmd in ("--help", "-h", "--version") else [f"no option {cmd!r}"]
    if cmd not in COMMANDS:
        return [f"no command {cmd!r}"]
    model = _module(cmd).HELP.model
    keys = set(model.model_fields) if model is not None else set(known_keys())
    problems = []
    for w in words[2:]:
        if w.startswith("-"):
            if w not in FLAGS.get(cmd, set()) | {"--help", "-h"}:
                problems.append(f"unknown flag {w}")
            continue
        if "=" not in w:
            continue  # a file argument (mikupal audio FILE) or prose
        key = w.split("=", 1)[0].lstrip("+")
        if PLACEHOLDER.match(key) or "..." in key:
            continue
        labeler_key = cmd == "evaluate" and (key == "labeler" or key.startswith("labeler."))  # passed to the labeler
        if key not in keys and not key.startswith("labeler.prices") and not labeler_key:
            problems.append(f"unknown key {key!r}")
    return problems


def test_every_inline_command_names_known_commands_flags_and_keys():
    found = inline_commands()
    assert len(found) > 10
    bad = {f"{where}: `{span}`": p for where, span in found if (p := _problems(span))}
    assert not bad, bad
