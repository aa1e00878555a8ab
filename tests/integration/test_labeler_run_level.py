"""Run-level labeler failures stop a real run (sequential engine, shared clips, fake Gemini over HTTP)
like SIGTERM does: committed videos stay, nothing becomes a final reject, one line says why, and the
re-run labels every kept segment. And a retired configured model stops the run before any stage."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.cli import main  # noqa: E402
from mikupal.engine.commit import OutputDir  # noqa: E402
from tests.fakes import FakeGemini, HttpError  # noqa: E402
from tests.fakes.gemini_server import not_found_body  # noqa: E402

KEY = "AIza-run-level-key"
MODEL = "gemini-3.8-flash"


class RetiredMidRun(FakeGemini):
    """Serves `MODEL` for `serve` generate requests, then answers the service's 404 for it
    (a shutdown between the preflight and the end of the run)."""

    def __init__(self, serve: int, **kw):
        super().__init__(**kw)
        self.serve = serve

    def _generate(self, model, req):
        with self._lock:
            self.serve -= 1
            gone = self.serve < 0
        if gone:
            raise HttpError(404, not_found_body(model, "generateContent"), outcome="model_not_found")
        return super()._generate(model, req)


def argv(models_dir: Path, inp: Path, out: Path, url: str, *extra: str, engine: str = "sequential") -> list[str]:
    return ["run", f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
            "asr.model=tiny.en", "offline=true", "engine.progress=false", f"engine={engine}", "labeler=gemini",
            f"labeler.base_url={url}", f"labeler.model={MODEL}", *extra]


@pytest.fixture()
def inputs(tmp_path, media) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("vr_face1.mp4", "vr_face2.mp4"):
        (d / name).symlink_to(media / name)
    return d


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def label_rejects(out: Path) -> list[dict]:
    rows = []
    for f in (out / "rejects").glob("*.parquet"):
        rows.extend(r for r in pq.read_table(f).to_pylist() if r["stage"] == "label")
    return rows


@pytest.mark.parametrize("engine", ["sequential", pytest.param("ray", marks=pytest.mark.slow)])
def test_model_retired_mid_run_stops_cleanly_and_the_rerun_labels_everything(models_dir, inputs, tmp_path, capsys,
                                                                             engine, request):
    if engine == "ray":
        request.getfixturevalue("ray_session")
    out = tmp_path / "out"
    with RetiredMidRun(serve=1, api_key=KEY) as srv:  # one utterance, then the model is gone
        # 2 s utterances: each clip is then one utterance, so the first video is whole after one answer
        rc = main(argv(models_dir, inputs, out, srv.url, "segment.min_seconds=2.0", engine=engine))
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mikupal run:")]
        assert rc == 2 and len(err) == 1, err
        assert f"models/{MODEL} is not found" in err[0] and "re-run" in err[0]
        # no request after the answer that said so: only those already in flight then (one at a time
        # in the sequential engine; up to labeler.requests_in_flight under Ray, where a batch is labeled at once)
        assert 1 <= srv.counts["model_not_found"] <= (1 if engine == "sequential" else 8)
    od = OutputDir(out)
    done = [s for s in od.summaries() if s.final]
    assert len(done) <= 1 and all(s.kept >= 1 for s in done)  # at most the first video: committed, labeled
    if engine == "sequential":
        assert len(done) == 1  # one video after the other: the first one was complete before the shutdown
    assert not label_rejects(out)  # the failure became no reject, final or not
    assert not list((out / "labeler" / "pending").glob("*.parquet"))
    first = [r for s in done for r in pq.read_table(out / "segments" / f"{s.key}.parquet").to_pylist()]
    with FakeGemini(api_key=KEY) as srv:
        assert main(argv(models_dir, inputs, out, srv.url, "segment.min_seconds=2.0", engine=engine)) == 0
    seg = od.read_segments().to_pylist()
    assert seg and all(r["primary_emotion"] and r["labeler_model"] == MODEL for r in seg)
    assert len({s.key for s in od.summaries() if s.final}) == 2
    again = [r for s in done for r in pq.read_table(out / "segments" / f"{s.key}.parquet").to_pylist()]
    assert again == first  # the committed video comes out as it was
    report = json.loads((out / "report.json").read_text())
    assert report["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in seg), abs=1e-6)
    cost = json.loads((out / "labeler" / "cost.json").read_text())  # this run's, written once by the driver
    # the two short videos share one ASR call (tiny.en's language check reads them together), so the
    # committed one is redone with its call (`depends_on_call`) and labeled again
    assert cost["segments_labeled"] == len(seg) and cost["requests"] == sum(srv.counts.values())


def test_retired_configured_model_stops_before_any_stage(models_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    with FakeGemini(api_key=KEY, retired=(MODEL,)) as srv:
        rc = main(argv(models_dir, inputs, out, srv.url))
        assert not srv.counts.get("ok")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"labeler.model={MODEL} is not served" in err[0]
    assert "mikupal models --labeler" in err[0]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))  # nothing ran, nothing written
    assert os.environ.get("MIKUPAL_LABELER_LIMITS") is None
