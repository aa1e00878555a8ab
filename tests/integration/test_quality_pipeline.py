"""End to end with the quality stage: a real talking-face clip and the same clip with loud pink noise
mixed into its audio (ffmpeg), through `run` (sequential engine, labeler off, default quality
thresholds), then exported and reported.

Done when: every kept segment has DNSMOS scores in [1, 5]; the noisy copy scores OVRL >= 0.3 lower
than the clean one or is rejected `low_quality`; the export loads in `datasets` and lhotse."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mikupal.cli import main
from mikupal.config import compose
from mikupal.dataset.rows import load_segments, read_parquet_dir
from mikupal.engine.run import run
from tests.browser import chromium_path, inspect_page

CLIP = "vr_face2.mp4"
SCORE = re.compile(r"dnsmos_ovrl (\d+\.\d+)")

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH")


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory, media, models_dir):
    if not (models_dir / "whisper" / "tiny.en").exists() or not (models_dir / "light-asd").exists():
        pytest.skip("offline models (tiny.en, light-asd) absent")
    inputs = tmp_path_factory.mktemp("inputs")
    (inputs / "clean.mp4").symlink_to(media / CLIP)
    # pink noise at about the speech level (0.25 peak amplitude), video copied untouched
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(media / CLIP),
                    "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.25:sample_rate=48000:seed=3",
                    "-filter_complex", "[0:a][1:a]amix=inputs=2:duration=first:normalize=0[a]",
                    "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", str(inputs / "noisy.mp4")],
                   check=True, timeout=120)
    out = tmp_path_factory.mktemp("out")
    cfg = compose([f"input={inputs}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
                   "asr.model=tiny.en", "offline=true", "engine.progress=false", "engine=sequential", "labeler=none"])
    run(cfg)
    return inputs, out


def _ovrl_by_source(out: Path) -> dict[str, list[float]]:
    """Each segment's OVRL as the quality stage scored it: kept rows' column, rejects' message."""
    scores: dict[str, list[float]] = {}
    for r in load_segments(out):
        scores.setdefault(Path(r["source"]).name, []).append(r["dnsmos_ovrl"])
    for r in read_parquet_dir(out / "rejects"):
        if r["reason"] == "low_quality":
            scores.setdefault(Path(r["source"]).name, []).append(float(SCORE.search(r["message"]).group(1)))
    return scores


def test_kept_segments_have_scores_and_noise_costs_ovrl(quality_run):
    _, out = quality_run
    kept = load_segments(out)
    for r in kept:
        for col in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"):
            assert 1.0 <= r[col] <= 5.0, (col, r[col])
        assert r["dnsmos_sig"] >= 1.3  # the default floor; OVRL is for export to select on
    scores = _ovrl_by_source(out)
    assert scores.get("clean.mp4"), "the clean clip reached the quality stage"
    noisy_kept = [r for r in kept if Path(r["source"]).name == "noisy.mp4"]
    clean_mean = sum(scores["clean.mp4"]) / len(scores["clean.mp4"])
    for r in noisy_kept:  # a noisy segment that was kept scores well under the clean ones
        assert r["dnsmos_ovrl"] <= clean_mean - 0.3
    noisy = scores.get("noisy.mp4", [])
    assert noisy, "the noisy copy's utterances reached the quality stage"
    assert sum(noisy) / len(noisy) <= clean_mean - 0.3


def test_report_and_exports_of_the_run(quality_run, tmp_path):
    _, out = quality_run
    html = (out / "report.html").read_text()
    assert "Speech quality (DNSMOS)" in html and "min_dnsmos=3.0" in html and "Per source" in html
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("torchcodec")
    assert main(["export", f"input={out}", "format=hf", f"output={tmp_path / 'hf'}"]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == len(load_segments(out))
    assert ds[0]["audio"].get_all_samples().data.shape[-1] > 0
    lhotse = pytest.importorskip("lhotse")
    assert main(["export", f"input={out}", "format=lhotse", f"output={tmp_path / 'lh'}"]) == 0
    cuts = lhotse.CutSet.from_file(tmp_path / "lh" / "cuts.jsonl.gz")
    assert all(c.supervisions[0].text and c.supervisions[0].speaker for c in cuts)


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (CI installs it: .ci/run)")
def test_real_report_plays_in_chromium(quality_run, tmp_path):
    """The run's own report.html: its players load the real dataset FLACs, its links resolve."""
    pytest.importorskip("websocket")
    _, out = quality_run
    seen, failed = inspect_page(out / "report.html", tmp_path / "profile")
    assert failed == []
    assert len(seen["audio"]) == len(load_segments(out)) > 0
    assert all(a["error"] is None and a["duration"] > 1.0 for a in seen["audio"]), seen["audio"]
    assert seen["played"] > 0
    for link in seen["links"]:
        assert Path(link.removeprefix("file://")).is_file(), link
