"""report.json's working sections and report.html in real headless Chromium: the page loads, every
player reports a duration (and one plays), no link or image is broken."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.engine.commit import OutputDir
from mikupal.records import Reject
from mikupal.report.html import write_html
from mikupal.report.summary import build_report
from tests.browser import chromium_path, inspect_page
from tests.dataset_fixtures import VIDEOS, all_rows, make_output

ROOT = Path(__file__).resolve().parents[2]
#: MIKUPAL_REPORT_SCREENSHOT=docs/report.png refreshes the screenshot kept in docs/
SCREENSHOT_ENV = "MIKUPAL_REPORT_SCREENSHOT"



@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> tuple[Path, dict]:
    root = make_output(tmp_path_factory.mktemp("run"))
    out = OutputDir(root)
    broken = Reject(item_id="broken", video_id="", source="/videos/broken.mp4", stage="probe",
                    reason="unreadable_container", message="not a media file")
    out.commit_rejects("broken", [broken], source="/videos/broken.mp4")  # a whole-video reject: no span
    report = build_report(out, wall_seconds=1.0, processed_keys=set(VIDEOS))
    write_html(root, report, out.read_segments())
    return root, report


def test_sections_are_built_from_the_tables(report_dir):
    root, report = report_dir
    rows = all_rows(root)
    by_name = {s["name"]: s for s in report["per_source"]}
    assert set(by_name) == {f"{v}.mp4" for v in VIDEOS} | {"broken.mp4"}
    assert by_name["broken.mp4"]["rejects"] == {"unreadable_container": 1} and by_name["broken.mp4"]["kept"] == 0
    assert by_name["vida.mp4"]["seconds_kept"] == pytest.approx(sum(r["duration"] for r in rows if r["video_id"] == "vida"))
    assert by_name["vida.mp4"]["rejects"] == {"no_active_speaker": 1, "low_quality": 1}
    low = next(g for g in report["reject_examples"] if g["reason"] == "low_quality")
    assert low["count"] == 3 and low["seconds"] == pytest.approx(6.0) and "dnsmos_ovrl 2.41" in low["examples"][0]["message"]
    probe = next(g for g in report["reject_examples"] if g["reason"] == "unreadable_container")
    assert probe["examples"] == [{"source": "broken.mp4", "start": None, "end": None, "message": "not a media file"}]
    assert "broken.mp4: not a media file" in (root / "report.html").read_text()
    speakers = {s["speaker_id"]: s for s in report["speakers"]}
    assert set(speakers) == {"vida_S1", "vida_S2", "vidb_S1"}  # from speakers/: vidc has no table
    assert speakers["vida_S1"]["segments"] == 2 and speakers["vida_S1"]["sample_audio"].startswith("audio/vida/")
    hist = report["dnsmos"]
    assert sum(b["count"] for b in hist["bins"]) == len(rows) == hist["scored"]
    assert hist["means"]["dnsmos_ovrl"] == pytest.approx(sum(r["dnsmos_ovrl"] for r in rows) / len(rows), abs=1e-3)
    for t in hist["thresholds"]:  # what each export threshold would keep
        mine = [r for r in rows if t["min_dnsmos"] is None or r["dnsmos_ovrl"] >= t["min_dnsmos"]]
        assert t["segments"] == len(mine) and t["seconds"] == pytest.approx(sum(r["duration"] for r in mine), abs=1e-3)
    assert hist["thresholds"][0]["segments"] == len(rows) and "min_dnsmos=3.0" in (root / "report.html").read_text()
    heat = report["emotion_heatmap"]
    assert len(heat["categories"]) == 26 and heat["rows"][0]["count"] == len(rows)
    groups = {"all segments": rows} | {p: [r for r in rows if r["primary_emotion"] == p] for p in {r["primary_emotion"] for r in rows}}
    assert {h["label"] for h in heat["rows"]} == set(groups)
    for h in heat["rows"]:
        mine = groups[h["label"]]
        expected = np.mean([[e["intensity"] for e in r["emotions"]] for r in mine], axis=0)
        assert h["count"] == len(mine) and np.allclose(h["means"], expected, atol=1e-4)


def test_tts_card_and_readable_speaker_names(report_dir):
    root, report = report_dir
    rows = all_rows(root)
    t = report["tts"]
    assert t["kept_hours"] == pytest.approx(sum(r["duration"] for r in rows) / 3600, abs=1e-4) and t["segments"] == len(rows)
    assert t["people"] == 3  # G1 (vida_S1), G2 (vida_S2 and vidb_S1, one voice), vidc (no speaker ids: the video)
    minutes = {p["person"]: p["minutes"] for p in t["minutes_per_person"]}
    g2 = sum(r["duration"] for r in rows if r.get("speaker_id") in ("vida_S2", "vidb_S1")) / 60
    assert minutes["G2"] == pytest.approx(g2, abs=1e-3) and set(minutes) == {"G1", "G2", "vidc"}
    assert {p["name"] for p in t["minutes_per_person"]} >= {"G1 (vida S1)", "vidc"}
    assert sum(b["count"] for b in t["duration_bins"]) == len(rows)
    names = {s["speaker_id"]: (s["name"], s["global_speaker_id"]) for s in report["speakers"]}
    assert names["vida_S2"] == ("vida S2", "G2") and names["vidb_S1"] == ("vidb S1", "G2")
    page = (root / "report.html").read_text()
    assert "<h2>For TTS</h2>" in page and "vida S2</span> <span class='gid'>G2</span>" in page


def test_no_cost_or_label_rows_when_labeling_was_off(report_dir):
    import pyarrow as pa

    from mikupal.report.html import render_html

    _, report = report_dir
    off = report | {"config": {"labeler": {"kind": "none"}}, "emotion_distribution": {}, "input_tokens": 0, "cost_usd": 0.0}
    page = render_html(off, pa.table({"segment_id": pa.array([], pa.string())}).slice(0, 0))
    head = page.split("<h2>", 1)[0]
    assert "Cost" not in head and "<tr><th>label</th>" not in page
    on = render_html(report | {"config": {"labeler": {"kind": "gemini"}}}, pa.table({"segment_id": pa.array([], pa.string())}))
    assert "Cost $" in on.split("<h2>", 1)[0] and "<tr><th>label</th>" in on


def test_speakers_fall_back_to_videos_without_a_speakers_table(tmp_path):
    root = make_output(tmp_path / "run")
    for p in (root / "speakers").glob("*.parquet"):
        p.unlink()
    report = build_report(OutputDir(root), wall_seconds=1.0, processed_keys=set())
    assert {s["speaker_id"] for s in report["speakers"]} == {"vida_S1", "vida_S2", "vidb_S1", "vidc"}


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (CI installs it: .ci/run)")
def test_report_in_headless_chromium(report_dir, tmp_path):
    pytest.importorskip("websocket", reason="websocket-client (test extra) drives Chromium")
    root, report = report_dir
    page_path = root / "report.html"
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "report.png")
    seen, failed = inspect_page(page_path, tmp_path / "profile", screenshot=shot)
    for h in ("Per source", "Rejects", "Speakers", "Speech quality (DNSMOS)", "Mixed emotions", "Segments"):
        assert h in seen["headings"]
    assert len(seen["audio"]) == report["segments"] > 0
    for a in seen["audio"]:
        assert a["error"] is None and a["duration"] > 0, a
    assert seen["played"] > 0, "the first player did not play"
    assert seen["heatCells"] == 26 * len(report["emotion_heatmap"]["rows"])
    assert seen["histBars"] == 16 + len(report["tts"]["duration_bins"])  # DNSMOS bins, then the TTS card's durations
    assert failed == []
    assert all(i["ok"] for i in seen["images"]), seen["images"]
    assert seen["links"]
    for link in seen["links"]:  # every link is a file next to the report
        url = urlparse(link)
        assert url.scheme == "file" and Path(unquote(url.path)).is_file(), link
        assert Path(unquote(url.path)).resolve().is_relative_to(root.resolve())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


#: the page's width, and the right edge of the segments table and of its last column's cells
FIT_CHECK = """({
  page: document.documentElement.scrollWidth,
  table: document.querySelector('table.clips').getBoundingClientRect().right,
  cells: Math.max(...[...document.querySelectorAll('table.clips td, table.clips th')].map(c => c.getBoundingClientRect().right)),
  players: [...document.querySelectorAll('table.clips audio')].map(a => a.getBoundingClientRect().width),
})"""


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (CI installs it: .ci/run)")
def test_the_segments_table_wraps_and_fits_1400_px(tmp_path):
    """A long transcript and long ids wrap inside their cells: at 1,400 px nothing (emotion,
    quality, the players) is off the side of the page (a screenshot is kept beside the report)."""
    pytest.importorskip("websocket")
    import pyarrow.parquet as pq

    from tests.browser import Chromium

    root = make_output(tmp_path / "run")
    f = sorted((root / "segments").glob("*.parquet"))[0]
    t = pq.read_table(f)
    texts = t.column("text").to_pylist()
    texts[0] = " ".join(["an unusually long transcript that goes on"] * 25) + " " + "x" * 120
    pq.write_table(t.set_column(t.schema.get_field_index("text"), "text", pa.array(texts)), f)
    out = OutputDir(root)
    write_html(root, build_report(out, wall_seconds=1.0, processed_keys=set(VIDEOS)), out.read_segments())
    with Chromium(tmp_path / "profile") as page:
        page.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        page.open((root / "report.html").resolve().as_uri())
        fit = page.evaluate(FIT_CHECK)
        shot = page.screenshot(root / "report_1400.png")
    assert fit["page"] <= 1400 and fit["table"] <= 1400 and fit["cells"] <= 1400, fit
    assert fit["players"] and min(fit["players"]) >= 100, fit  # each player keeps a usable width
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (CI installs it: .ci/run)")
def test_the_browser_check_sees_broken_media(tmp_path):
    """The checks above are not vacuous: a missing FLAC and a missing image are caught."""
    pytest.importorskip("websocket")
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><h2>x</h2><audio preload="metadata" src="missing.flac"></audio>'
                    '<img src="missing.jpg"><a href="nowhere.mp4">clip</a>', encoding="utf-8")
    seen, failed = inspect_page(page, tmp_path / "profile")
    assert seen["audio"][0]["error"] is not None and not (seen["audio"][0]["duration"] or 0) > 0  # NaN comes back as None
    assert not seen["images"][0]["ok"] and seen["played"] == -1
    assert {Path(f["url"]).name for f in failed} >= {"missing.flac", "missing.jpg"}
    assert not Path(seen["links"][0].removeprefix("file://")).is_file()
