"""Fixtures of the reliability suite: the hostile inputs and their one Ray run, a small set of
talking clips for the fault tests and its clean (reference) run. Writes CASES.md at the end."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.run import run
from tests.reliability import harness, inputs


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    harness.write_table()


@pytest.fixture(scope="session")
def hostile(tmp_path_factory, media):
    root = tmp_path_factory.mktemp("hostile")
    cases = inputs.build(root, media)
    return root, cases


@pytest.fixture(scope="session")
def hostile_run(hostile, tmp_path_factory, ray_session, models_dir):
    """ONE pipeline run (the default engine: local threads on this machine) over every hostile input,
    listed in a list file two folders down."""
    root, cases = hostile
    out = tmp_path_factory.mktemp("hostile_out")
    t0 = time.perf_counter()
    report = run(compose(harness.overrides(models_dir, out, inputs.list_file(root), "labeler=none")))
    return {"root": root, "cases": cases, "out": out, "report": report, "wall": time.perf_counter() - t0}


FAULT_CLIPS = ("a_face1.mp4", "b_silence.mp4", "c_face2.mp4")


@pytest.fixture(scope="session")
def fault_inputs(tmp_path_factory, media) -> Path:
    """Two talking clips (one utterance each) around 20 s of silence (a reject): three videos."""
    d = tmp_path_factory.mktemp("fault_inputs")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-c:a", "aac"]
    inputs.ffmpeg("-t", "3", "-i", str(media / "vr_face1.mp4"), *x264, str(d / FAULT_CLIPS[0]))
    inputs.silence(d / FAULT_CLIPS[1], 20)
    inputs.ffmpeg("-t", "2.6", "-i", str(media / "vr_face2.mp4"), *x264, str(d / FAULT_CLIPS[2]))
    return d


@pytest.fixture(scope="session")
def clean_ref(fault_inputs, tmp_path_factory, models_dir):
    """The uninterrupted run every faulted-then-resumed run must equal (sequential, no labeler)."""
    out = tmp_path_factory.mktemp("clean_ref")
    t0 = time.perf_counter()
    run(compose(harness.overrides(models_dir, out, fault_inputs, "labeler=none", "engine=sequential")))
    snap = harness.snapshot(out)
    assert len(snap["segments"]) >= 2 and snap["done"], "the reference run must keep utterances"
    return {"out": out, "snap": snap, "wall": time.perf_counter() - t0}


@pytest.fixture(scope="session")
def labeled(clean_ref, fault_inputs, models_dir, tmp_path_factory):
    """The clean labeled output (`mikupal label` over a copy of the clean run, key from a file, no
    faults), and a pipeline run labeling through an API that fails 30 % of requests (key from the
    environment), then its resume with the API healthy."""
    from tests.fakes import FakeGemini, FaultPlan

    base = tmp_path_factory.mktemp("labeled")
    key_file = base / "gemini.key"
    key_file.write_text(harness.FILE_KEY + "\n")
    ref = base / "ref"
    shutil.copytree(clean_ref["out"], ref)
    old_env = os.environ.get("GEMINI_API_KEY")
    logs = {}
    try:
        with FakeGemini(api_key=harness.FILE_KEY) as srv, harness.Captured() as cap:
            from mikupal.commands.label import label_command

            rc = label_command([f"input={ref}", *harness.LABELER, f"labeler.base_url={srv.url}",
                                f"labeler.api_key_file={key_file}"])
        logs["ref"] = cap.text
        assert rc == 0, cap.text[-2000:]
        os.environ["GEMINI_API_KEY"] = harness.KEY
        out = base / "faulty"
        texts = [r["text"] for r in clean_ref["snap"]["segments"]]
        if len(set(texts)) < 2:  # the fresh-clone stand-ins for vr_face1/2 say the same words
            pytest.skip("the fault plan needs two different utterances (../shared's vr_face clips)")
        seed, planned = harness.fault_seed(texts)
        plan = FaultPlan(rate=0.3, seed=seed, kinds=harness.FAULT_KINDS, slow_s=1.5, retry_delay_s=0.05)
        t0 = time.perf_counter()
        with FakeGemini(api_key=harness.KEY, faults=plan) as srv, harness.Captured() as cap:
            report = run(compose(harness.overrides(models_dir, out, fault_inputs, *harness.LABELER, "engine=sequential",
                                                   f"labeler.base_url={srv.url}")))
            counts = dict(srv.counts)
        logs["faulty"] = cap.text
        faulty = harness.snapshot(out)
        with FakeGemini(api_key=harness.KEY) as srv, harness.Captured() as cap:
            run(compose(harness.overrides(models_dir, out, fault_inputs, *harness.LABELER, "engine=sequential",
                                          f"labeler.base_url={srv.url}")))
        logs["resumed"] = cap.text
        wall = time.perf_counter() - t0
    finally:
        if old_env is None:
            os.environ.pop("GEMINI_API_KEY", None)
        else:
            os.environ["GEMINI_API_KEY"] = old_env
    return {"ref": ref, "out": out, "faulty": faulty, "counts": counts, "report": report, "logs": logs,
            "wall": wall, "key_file": key_file, "seed": seed, "planned": planned}


@pytest.fixture(scope="session")
def ray_killed_run(ray_session, labeled, clean_ref, fault_inputs, models_dir, tmp_path_factory):
    """A labeled Ray run (key from the environment) in which the vision actor dies on one utterance
    and a VAD task's worker on one video, once each (MIKUPAL_FAULT_INJECT with marker files)."""
    from mikupal.stages.faults import FAULT_ENV
    from tests.fakes import FakeGemini

    base = tmp_path_factory.mktemp("killed")
    ref = clean_ref["snap"]
    seg_id = ref["segments"][0]["segment_id"]
    vad_vid = ref["segments"][-1]["video_id"]
    markers = (base / "vision.fired", base / "vad.fired")
    saved = {k: os.environ.get(k) for k in (FAULT_ENV, "GEMINI_API_KEY")}
    os.environ[FAULT_ENV] = f"vision:{seg_id}:exit:{markers[0]};vad:{vad_vid}:exit:{markers[1]}"
    os.environ["GEMINI_API_KEY"] = harness.KEY
    out = base / "out"
    t0 = time.perf_counter()
    try:
        with FakeGemini(api_key=harness.KEY) as srv, harness.Captured() as cap:
            run(compose(harness.overrides(models_dir, out, fault_inputs, *harness.LABELER,
                                          f"labeler.base_url={srv.url}", "engine=ray")))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    session_dir = Path(ray_session._private.worker.global_worker.node.get_session_dir_path())
    return {"out": out, "markers": markers, "wall": time.perf_counter() - t0, "log": cap.text,
            "ray_session_dir": session_dir}
