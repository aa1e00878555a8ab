"""The real-footage benchmark as a test: one default run over the fetched footage.

    python -m benchmarks.real_footage fetch --to ~/footage
    MIKUPAL_REAL_FOOTAGE=~/footage python -m pytest benchmarks/test_real_footage.py -m benchmark -s

It asserts what holds for any configuration (every file ends in the dataset or in rejects/, every
kept segment lies inside its file) and records the figures in benchmarks/results/real_footage.json;
the issue's targets are read from that file, not asserted here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.real_footage.__main__ import main
from benchmarks.real_footage.manifest import load, media_path
from mikupal.committed import CommittedOutput

pytestmark = pytest.mark.benchmark


@pytest.fixture
def footage() -> Path:
    d = os.environ.get("MIKUPAL_REAL_FOOTAGE")
    if not d:
        pytest.skip("set MIKUPAL_REAL_FOOTAGE to a folder filled by `python -m benchmarks.real_footage fetch --to DIR`")
    d = Path(d).expanduser()
    if not all(media_path(d, e).is_file() for e in load() if e.video):
        pytest.skip(f"{d} lacks some of the manifest's videos: run `python -m benchmarks.real_footage fetch --to {d}`")
    return d


def test_every_file_is_accounted_for_and_the_figures_are_recorded(footage, tmp_path):
    assert main(["run", "--media", str(footage), "--out", str(tmp_path), "--label", "default_test"]) == 0
    read = CommittedOutput(tmp_path / "default_test")
    segs, rejs = read.read_segments().to_pylist(), read.read_rejects().to_pylist()
    for e in (e for e in load() if e.video):
        mine = [s for s in segs if Path(s["source"]).name == e.name]
        assert mine or any(Path(r["source"]).name == e.name for r in rejs), f"{e.name}: neither kept nor rejected"
        assert all(0 <= s["start"] < s["end"] <= e.seconds + 0.1 for s in mine)
    results = json.loads((Path(__file__).parent / "results" / "real_footage.json").read_text())
    run = results["runs"]["default_test"]
    print(json.dumps({k: run[k] for k in ("yield", "ovrl", "language")}, indent=1, ensure_ascii=False)[:4000])
