"""Joining a cluster fails in one line, soon: a dashboard (HTTP) address, a port where nothing
listens, a host that does not answer; the workers' library settings travel in the job's runtime
env, the user's own values first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.cluster import WORKER_ENV, check_address, cluster_address, worker_env
from mikupal.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dashboard_address_is_explained_in_one_line():
    with pytest.raises(UserError) as e:
        check_address("http://127.0.0.1:8265", "RAY_ADDRESS")
    msg = str(e.value)
    assert "\n" not in msg and "RAY_ADDRESS=http://127.0.0.1:8265" in msg
    assert "127.0.0.1:6379" in msg and "ray job submit" in msg


def test_a_port_where_nothing_listens_fails_at_once_naming_it():
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(UserError, match=f"engine.address=127.0.0.1:{port}.*refused"):
        check_address(f"127.0.0.1:{port}", "engine.address")
    assert time.monotonic() - t0 < 5


def test_a_host_that_does_not_answer_as_ray_fails_soon():
    """A private address no cluster holds (where a network may still take the TCP connection, or
    time it out): one line naming it, well within 30 s."""
    t0 = time.monotonic()
    with pytest.raises(UserError, match="engine.address=10.255.255.1:6379"):
        check_address("10.255.255.1:6379", "engine.address", timeout_s=3.0)
    assert time.monotonic() - t0 < 20


def test_a_server_that_is_not_ray_fails_soon(tmp_path):
    """Something listens (an HTTP server), but it is no Ray GCS."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        with pytest.raises(UserError, match=f"127.0.0.1:{server.server_port}.*no Ray GCS"):
            check_address(f"127.0.0.1:{server.server_port}", "engine.address", timeout_s=3.0)
        assert time.monotonic() - t0 < 20
    finally:
        server.shutdown()


def test_the_address_comes_from_the_config_then_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address(compose(["engine.address=auto"]).engine) == ("auto", "engine.address")
    assert cluster_address(compose([]).engine) == ("10.0.0.1:6379", "RAY_ADDRESS")
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_address(compose([]).engine) == (None, "")
    check_address("auto", "engine.address")  # Ray finds it; nothing to check here


def test_worker_env_keeps_the_users_values_and_leaves_the_jobs_to_it():
    assert worker_env({}) == WORKER_ENV
    assert worker_env({"OPENCV_LOG_LEVEL": "INFO"})["OPENCV_LOG_LEVEL"] == "INFO"
    job = {"runtime_env": {"env_vars": {"MALLOC_ARENA_MAX": "4"}}}
    env = worker_env({"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job)})
    assert "MALLOC_ARENA_MAX" not in env and env["OPENCV_LOG_LEVEL"] == "ERROR"  # Ray refuses the same key twice


@pytest.mark.parametrize("how", ["http", "refused"])
def test_mikupal_run_against_a_bad_address_exits_2_in_one_line(tmp_path, how, models_dir, media):
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    extra = []
    if how == "http":
        env["RAY_ADDRESS"] = "http://127.0.0.1:8265"
    else:
        extra = [f"engine.address=127.0.0.1:{port}"]
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", f"input={media / 'vr_face1.mp4'}", f"output={tmp_path / 'out'}",
                        f"models_dir={models_dir}", "profile=cpu", "separation=none", "asr.model=tiny.en", "offline=true",
                        "labeler=none", *extra], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert ("RAY_ADDRESS=http://127.0.0.1:8265" if how == "http" else f"127.0.0.1:{port}") in lines[0]
    assert time.monotonic() - t0 < 30


NATIVE_SCRIPT = """
import os, sys, logging
from mikupal.engine.run_log import RunLog
logging.basicConfig(level=logging.WARNING)
with RunLog(sys.argv[1]):
    os.write(2, b"[2026-12-06 18:04:03,075 E 23897 23897] core_worker.cc:2465: Actor with class name: 'X' max_restarts > 0\\n")
    os.write(2, b"[ WARN:0@4.494] global net_impl_backend.cpp:388 setPreferableTarget Targets are not supported\\n")
    os.write(2, b"a native line of another kind\\n")
    logging.getLogger("mikupal").warning("a mikupal warning")
"""


def test_native_library_lines_go_to_the_log_file_not_the_terminal(tmp_path):
    """Ray's C++ core and OpenCV write to fd 2 past Python's logging: during a run their lines (in
    their own formats) land in OUT/logs/, everything else still reaches the terminal."""
    p = subprocess.run([sys.executable, "-c", NATIVE_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert "core_worker.cc" not in p.stderr and "setPreferableTarget" not in p.stderr
    assert "a native line of another kind" in p.stderr and "a mikupal warning" in p.stderr
    logged = "".join(f.read_text() for f in (tmp_path / "logs").glob("*.log"))
    assert "core_worker.cc:2465" in logged and "setPreferableTarget" in logged
