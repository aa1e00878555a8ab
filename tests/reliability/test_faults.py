"""Injected faults on the real pipeline, each compared with one clean run of the same three inputs
(two talking clips and a silent one, `clean_ref`): a stage raising on one utterance, a worker
process killed mid-task (Ray retries it), the output disk filling up, SIGTERM/SIGINT to the driver,
and a labeler API failing 30 % of its requests. In each: the run ends normally or stops with one
clear line, nothing committed is damaged, and the resumed run's output equals the clean run's."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from mikupal.stages.faults import FAULT_ENV
from tests.reliability import harness

SEQ = ("labeler=none", "engine=sequential")


def _resume_equals_clean(out: Path, clean_ref, models_dir, fault_inputs, *extra: str) -> list[str]:
    run(compose(harness.overrides(models_dir, out, fault_inputs, *(extra or SEQ))))
    return harness.diff(harness.snapshot(out), clean_ref["snap"])


def _wait_for_commits(p: subprocess.Popen, out: Path, n: int = 1, timeout: float = 300) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None:
        k = len(harness.markers(out))
        if k >= n:
            return k
        time.sleep(0.02)
    raise AssertionError(f"the run ended (rc {p.poll()}) or stalled before {n} commits")


def _one_line_error(err: str) -> list[str]:
    """The run's own error lines (OpenCV prints '[ WARN...' lines of its own on stderr)."""
    return [ln for ln in err.splitlines() if ln.startswith("mikupal ")]


# ---------------------------------------------------------------- a stage raises on one utterance


def test_stage_raising_on_one_segment(clean_ref, fault_inputs, models_dir, tmp_path, monkeypatch):
    ref = clean_ref["snap"]
    target = ref["segments"][0]
    seg_id, vid = target["segment_id"], target["video_id"]
    out = tmp_path / "out"
    monkeypatch.setenv(FAULT_ENV, f"vision:{seg_id}:raise")
    t0 = time.perf_counter()
    run(compose(harness.overrides(models_dir, out, fault_inputs, *SEQ)))  # returns normally: exit 0
    snap = harness.snapshot(out)
    got = [(r["stage"], r["reason"]) for r in snap["rejects"] if r["item_id"] == seg_id]
    others = set(ref["done"]) - {vid}
    same_others = harness.diff(harness.snapshot(out, others), harness.snapshot(clean_ref["out"], others))
    monkeypatch.delenv(FAULT_ENV)
    resumed = _resume_equals_clean(out, clean_ref, models_dir, fault_inputs)
    ok = got == [("vision", "stage_error")] and snap["done"][vid] is False and not same_others and not resumed
    harness.record("faults", "stage_raises", "a stage raises on one utterance", "reject vision/stage_error, "
                   "other videos unchanged, resume = clean", f"reject {'; '.join('/'.join(g) for g in got)}; "
                   f"video {'left for the next run' if snap['done'][vid] is False else 'FINAL'}; other videos "
                   f"{'= clean' if not same_others else '!= clean'}; resumed {'= clean' if not resumed else '!= clean'}", ok,
                   time.perf_counter() - t0)
    assert got == [("vision", "stage_error")]
    assert snap["done"][vid] is False, "a video hit by an unexpected error must be redone by the next run"
    assert not same_others, same_others
    assert not resumed, resumed


# ---------------------------------------------------------------- a worker process dies mid-task


def test_worker_killed_mid_task_is_retried(ray_killed_run, labeled):
    """The vision actor dies on one utterance and a VAD task's worker on one video (once each):
    Ray restarts the actor / reruns the task and the labeled run equals the clean labeled one."""
    r = ray_killed_run
    fired = all(m.exists() for m in r["markers"])
    d = harness.diff(harness.snapshot(r["out"]), harness.snapshot(labeled["ref"]))
    harness.record("faults", "worker_killed", "a worker process killed mid-task (Ray actor and task, labeled run)",
                   "Ray retries; output = clean", f"{'both faults fired' if fired else 'NOT FIRED'}; output "
                   f"{'= clean' if not d else '!= clean'}", fired and not d, r["wall"])
    assert fired, "the injected worker exits did not happen"
    assert not d, d


# ---------------------------------------------------------------- the output disk fills up


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


class _DiskFiller:
    """Keeps the disk full while the run goes on: the run frees its scratch (`.work/`) after each
    commit, and a one-off fill would let the next video commit into that freed space."""

    def __init__(self, disk: Path):
        self.ballast = disk / "ballast"
        self._stop = threading.Event()
        self._full = threading.Event()
        self._thread = threading.Thread(target=self._keep_full, daemon=True)

    def _keep_full(self) -> None:
        block = b"\0" * (1 << 12)
        with open(self.ballast, "wb", buffering=0) as f:
            while not self._stop.is_set():
                try:
                    f.write(block)
                except OSError:
                    self._full.set()
                    time.sleep(0.005)

    def __enter__(self) -> "_DiskFiller":
        self._thread.start()
        self._full.wait(60)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.ballast.unlink()


def test_disk_full_stops_cleanly_and_resumes(small_disk, clean_ref, fault_inputs, models_dir):
    out = small_disk / "out"
    args = harness.overrides(models_dir, out, fault_inputs, *SEQ)
    t0 = time.perf_counter()
    p = harness.start_cli(args)
    _wait_for_commits(p, out, 1)
    with _DiskFiller(small_disk):  # the disk fills while the second video is being processed
        _, err = p.communicate(timeout=300)
    errors = _one_line_error(err)
    done = {s.key for s in OutputDir(out).summaries()}
    intact = harness.diff(harness.snapshot(out, done), harness.snapshot(clean_ref["out"], done))
    leftovers = [str(q) for q in out.rglob("*.tmp")]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = _resume_equals_clean(out, clean_ref, models_dir, fault_inputs)
    ok = (p.returncode == 2 and len(errors) == 1 and "output disk full" in errors[0] and "Traceback" not in err
          and 1 <= len(done) < 3 and not intact and not leftovers and not resumed)
    harness.record("faults", "disk_full", "the output disk fills up mid-run (tmpfs)",
                   "exit 2, one line; committed videos intact; resume = clean",
                   f"exit {p.returncode}: {(errors[0] if errors else err[-200:]).replace(str(out), '<out>')!r}; "
                   f"{len(done)} committed "
                   f"{'intact' if not intact else 'DAMAGED'}; resumed {'= clean' if not resumed else '!= clean'}",
                   ok, time.perf_counter() - t0)
    assert p.returncode == 2, err[-3000:]
    assert len(errors) == 1 and "output disk full" in errors[0] and str(out) in errors[0], err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert 1 <= len(done) < 3
    assert not intact, intact
    assert not leftovers, leftovers
    assert not resumed, resumed


# ---------------------------------------------------------------- SIGTERM / SIGINT to the driver


def _signal_case(sig: int, engine: str, how: str, rc: int, errors: list[str], err: str, committed: int,
                 resumed: list[str], seconds: float, mid_run: bool = True) -> bool:
    name = signal.Signals(sig).name
    ok = (rc == 128 + sig and len(errors) == 1 and f"stopped by {name}" in errors[0] and "re-run" in errors[0]
          and "Traceback" not in err and (committed < 3 or not mid_run) and not resumed)
    case = f"{name.lower()}_{engine}_{'cli' if how == 'CLI' else 'in_process'}"
    harness.record("faults", case, f"{name} to the driver mid-run ({engine} engine, {how})",
                   f"exit {128 + sig}, one line; resume = clean",
                   f"exit {rc}: {errors[0] if errors else err[-200:]!r}; {committed} of 3 committed; "
                   f"resumed {'= clean' if not resumed else '!= clean'}", ok, seconds)
    return ok


@pytest.mark.parametrize("sig,engine", [
    (signal.SIGTERM, "sequential"),
    pytest.param(signal.SIGINT, "ray", marks=pytest.mark.slow),  # starts its own Ray: slow
])
def test_signal_to_the_cli_driver_stops_cleanly_and_resumes(sig, engine, clean_ref, fault_inputs, models_dir,
                                                            tmp_path):
    out = tmp_path / "out"
    args = harness.overrides(models_dir, out, fault_inputs, "labeler=none", f"engine={engine}")
    t0 = time.perf_counter()
    p = harness.start_cli(args)
    _wait_for_commits(p, out, 1)
    os.kill(p.pid, sig)  # the driver only, as `kill PID` would
    _, err = p.communicate(timeout=300)
    committed = len(harness.markers(out))
    errors = _one_line_error(err)
    resumed = _resume_equals_clean(out, clean_ref, models_dir, fault_inputs)
    name = signal.Signals(sig).name
    _signal_case(sig, engine, "CLI", p.returncode, errors, err, committed, resumed, time.perf_counter() - t0)
    assert p.returncode == 128 + sig, err[-3000:]
    assert len(errors) == 1 and f"stopped by {name}" in errors[0] and "re-run" in errors[0], err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert committed < 3
    assert not resumed, resumed


def test_sigint_to_the_ray_driver_stops_cleanly_and_resumes(ray_session, clean_ref, fault_inputs, models_dir,
                                                            tmp_path):
    """SIGINT (a Ctrl-C) to this process while it drives a Ray run: the run stops between commits
    with `Stopped` (the CLI prints it as one line, exit 130), the test session goes on."""
    from mikupal.engine import run as run_mod

    out = tmp_path / "out"
    main = threading.main_thread().ident
    sent = threading.Event()

    def interrupt():
        deadline = time.time() + 300
        while time.time() < deadline and not harness.markers(out):
            time.sleep(0.02)
        if signal.getsignal(signal.SIGINT) is run_mod._on_signal:  # only while run() handles it
            signal.pthread_kill(main, signal.SIGINT)
            sent.set()

    t0 = time.perf_counter()
    watcher = threading.Thread(target=interrupt, daemon=True)
    watcher.start()
    with pytest.raises(run_mod.Stopped) as e:
        run(compose(harness.overrides(models_dir, out, fault_inputs, "labeler=none", "engine=ray")))
    watcher.join()
    assert sent.is_set()
    msg = str(e.value)
    committed = len(harness.markers(out))
    resumed = _resume_equals_clean(out, clean_ref, models_dir, fault_inputs)
    # Ray may hand over several videos at once: the stop can land after the last commit (then it
    # interrupts the report); what matters is a clean stop and a resume equal to the clean run
    _signal_case(signal.SIGINT, "ray", "in-process driver", e.value.exit_code, [f"mikupal run: {msg}"], "",
                 committed, resumed, time.perf_counter() - t0, mid_run=False)
    assert e.value.exit_code == 130 and "\n" not in msg and "stopped by SIGINT" in msg, msg
    assert committed >= 1
    assert not resumed, resumed


# ---------------------------------------------------------------- the labeler API fails 30 % of requests

def test_labeler_faults_at_30_percent(labeled):
    """Faults on 30 % of requests (seed chosen so that every kind occurs, one utterance is labeled
    after a fault and one exhausts its retries): labeled utterances carry the clean run's labels,
    the exhausted one is a labeler_* reject of a video the next run redoes, and the resumed output
    equals the clean labeled run, but for the bill (tokens, cost) of answers that were re-asked."""
    ref = harness.snapshot(labeled["ref"])
    faulty, counts = labeled["faulty"], labeled["counts"]
    injected = {k: v for k, v in counts.items() if k not in ("ok", "file_uploaded", "file_deleted")}
    label_rejects = [r for r in faulty["rejects"] if r["stage"] == "label"]
    allowed = {"labeler_rate_limited", "labeler_server_error", "labeler_timeout", "labeler_invalid_output"}
    reasons_ok = bool(label_rejects) and all(r["reason"] in allowed for r in label_rejects)
    rejected_videos = {r["video_id"] for r in label_rejects}
    retried = all(faulty["done"][v] is False for v in rejected_videos)
    kept = set(faulty["done"]) - rejected_videos
    def kept_rows(snap):
        return {"segments": [r for r in snap["segments"] if r["video_id"] in kept], "rejects": [], "done": {},
                "files": {}}

    same_labels = harness.diff(kept_rows(faulty), kept_rows(ref), harness.BILLING)
    final = harness.snapshot(labeled["out"])
    resumed = harness.diff(final, ref, harness.BILLING)
    # the bill differs only where retries were paid for (an invalid answer is billed), never below the clean one
    cost = {r["segment_id"]: r["cost_usd"] for r in ref["segments"]}
    billed_ok = all(r["cost_usd"] >= cost[r["segment_id"]] - 1e-9 for r in final["segments"])
    ok = set(injected) >= set(harness.FAULT_KINDS) - {"slow"} and reasons_ok and retried and not same_labels \
        and not resumed and billed_ok
    harness.record("faults", "labeler_30pct", "labeler API: 429 / 500 / timeouts / invalid JSON on 30 % of requests",
                   "labeled = clean labels, or labeler_* reject redone on resume; resume = clean labeled run (bill aside)",
                   f"seed {labeled['seed']}: faults {dict(sorted(injected.items()))}, {counts.get('ok', 0)} ok; "
                   f"{len(faulty['segments'])} labeled, {len(label_rejects)} rejected "
                   f"{sorted({r['reason'] for r in label_rejects})}; resumed {'= clean' if not resumed else '!= clean'}",
                   ok, labeled["wall"])
    assert set(injected) >= set(harness.FAULT_KINDS) - {"slow"}, counts  # a timed-out request is logged as 'slow'
    assert reasons_ok, (label_rejects, labeled["planned"])
    assert retried, faulty["done"]
    assert not same_labels, same_labels
    for r in faulty["segments"]:
        assert r["primary_emotion"] and len(r["emotions"]) == 26
    assert not resumed, resumed
    assert billed_ok, (final["segments"], ref["segments"])


@pytest.mark.slow
def test_soak_repeated_sigkill_then_resume(hostile_run, models_dir, tmp_path):
    """Crash recovery soak: the driver (CLI, sequential) over every hostile input is SIGKILLed at
    random moments, five times, each time resumed; the final output equals the uninterrupted run's."""
    import random

    rng = random.Random(7)
    out = tmp_path / "out"
    args = harness.overrides(models_dir, out, hostile_run["root"] / "lists" / "deep" / "inputs.txt", *SEQ)
    t0 = time.perf_counter()
    kills = 0
    for _ in range(5):
        p = harness.start_cli(args)
        time.sleep(rng.uniform(4.0, 15.0))
        if p.poll() is not None:
            break
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
    rc, _, err = harness.run_cli(args)
    d = harness.diff(harness.snapshot(out), harness.snapshot(hostile_run["out"]))
    harness.record("faults", "soak_sigkill", "SIGKILL the driver at random moments, 5 times, over all hostile inputs "
                   "(slow)", "final output = uninterrupted run", f"{kills} kills, final exit {rc}; output "
                   f"{'= uninterrupted run' if not d else '!= uninterrupted run'}", rc == 0 and not d and kills > 0,
                   time.perf_counter() - t0)
    assert rc == 0, err[-3000:]
    assert kills > 0
    assert not d, d
