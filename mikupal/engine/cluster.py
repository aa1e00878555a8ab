"""Joining Ray: a cluster named by `engine.address` / `RAY_ADDRESS` (or `ray job submit`), else a
local Ray with bounded memory; what every worker of the run gets in its environment; and one line,
soon, for an address that cannot work.

Library settings for the workers (`WORKER_ENV`) travel in the job's runtime_env, so they reach the
workers of a joined cluster too (an environment variable set in the driver's shell reaches only a
local Ray's workers). A value the user set, in the driver's environment or in the runtime_env of
`ray job submit`, wins over the default here.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from typing import Optional
from urllib.parse import urlparse

from ..config import EngineConfig
from ..errors import UserError

#: every worker's environment, unless the user set the variable: OpenCV's native log to errors
#: only (its "graph engine" warnings bypass Python logging); glibc's malloc keeps two arenas per
#: process instead of eight per core (a worker's threads each growing their own arena is most of
#: what a long run's RSS gains); Ray's own C++ log lines to its files, not the terminal
WORKER_ENV = {
    "OPENCV_LOG_LEVEL": "ERROR",
    "MALLOC_ARENA_MAX": "2",
    "RAY_BACKEND_LOG_LEVEL": "error",
}
#: the driver's own: Ray's C++ core prints its warnings (an actor's restart caveat, ...) to the
#: terminal of the process that called ray.init
DRIVER_ENV = {"RAY_BACKEND_LOG_LEVEL": "error"}
CONNECT_TIMEOUT_S = 10.0  # an address where nothing answers fails after this, in one line
GCS_PORT = 6379  # `ray start --head`'s default

log = logging.getLogger(__name__)


def cluster_address(engine: EngineConfig) -> tuple[Optional[str], str]:
    """The cluster to join (None: start a local Ray) and where that came from, for messages."""
    if engine.address:
        return engine.address, "engine.address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    return None, ""


def check_address(address: str, origin: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """One line now for an address that cannot work, instead of Ray's retries for minutes: the
    dashboard's HTTP address (that is `ray job submit`'s), or a host:port where nothing answers."""
    if address == "auto" or address.startswith("local"):
        return
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    if parsed.scheme in ("http", "https"):
        raise UserError(
            f"{origin}={address} is a Ray dashboard (job submission) address: a run joins a cluster at its GCS "
            f"address, e.g. {origin}={parsed.hostname or '127.0.0.1'}:{GCS_PORT} (or auto on one of its nodes); "
            "to submit a job there use `ray job submit --address " + address + "` (deploy/submit_workstation.sh)")
    host, port = parsed.hostname, parsed.port or (10001 if parsed.scheme == "ray" else GCS_PORT)
    if not host:
        raise UserError(f"{origin}={address} is not a Ray address (expected host:port, ray://host:port or auto)")
    why = _unanswered(host, port, timeout_s) or (None if parsed.scheme == "ray" else _no_gcs(f"{host}:{port}", timeout_s))
    if why:
        raise UserError(f"cannot reach the Ray cluster at {origin}={address} ({host}:{port}: {why}); start it "
                        "(`ray start --head`) or fix the address")


def _unanswered(host: str, port: int, timeout_s: float) -> Optional[str]:
    """Why nothing takes a TCP connection there, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as e:
        return "timed out" if isinstance(e, (socket.timeout, TimeoutError)) else (e.strerror or type(e).__name__).lower()


_GCS_PROBE = """
import sys
from ray._raylet import GcsClient
GcsClient(address=sys.argv[1]).internal_kv_get(b"mikupal-probe", namespace=None, timeout=float(sys.argv[2]))
"""


def _no_gcs(address: str, timeout_s: float) -> Optional[str]:
    """Why no Ray GCS answers at host:port (something else may take the connection: a proxy, another
    server), or None. Asked in a child process, so a client that hangs is simply ended."""
    env = dict(os.environ, RAY_BACKEND_LOG_LEVEL="fatal")
    try:
        p = subprocess.run([sys.executable, "-c", _GCS_PROBE, address, str(timeout_s)], capture_output=True, text=True,
                           timeout=timeout_s + 10, env=env)
    except subprocess.TimeoutExpired:
        return f"no Ray GCS answered within {timeout_s:g} s"
    if p.returncode == 0:
        return None
    last = next((ln for ln in reversed(p.stderr.strip().splitlines()) if ln.strip()), "")
    return f"no Ray GCS answers there ({' '.join(last.split())[:160]})"


def worker_env(environ=os.environ) -> dict[str, str]:
    """`WORKER_ENV` with the user's own values, less what the job's runtime_env already sets
    (`ray job submit --runtime-env`: Ray refuses a driver that sets the same variable again)."""
    job_env: dict = {}
    raw = environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if raw:
        try:
            job_env = (json.loads(raw).get("runtime_env") or {}).get("env_vars") or {}
        except (ValueError, AttributeError):
            job_env = {}
    return {k: environ.get(k, v) for k, v in WORKER_ENV.items() if k not in job_env}


def init_ray(engine: EngineConfig) -> None:
    """Join a cluster when one is named (engine.address, RAY_ADDRESS, `ray job submit`), else start
    a local Ray with a bounded object store. Every worker gets `worker_env()`."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    for k, v in DRIVER_ENV.items():
        os.environ.setdefault(k, v)
    address, origin = cluster_address(engine)
    kwargs = dict(ignore_reinit_error=True, logging_level=logging.WARNING, log_to_driver=True,
                  runtime_env={"env_vars": worker_env()})
    try:
        if address:
            check_address(address, origin)
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=engine.num_cpus, include_dashboard=False,
                     object_store_memory=int(engine.object_store_memory_gb * (1 << 30)), **kwargs)
    except (ConnectionError, ValueError) as e:  # Ray's own, e.g. no cluster for "auto"
        first = " ".join(str(e).split())[:300]
        where = f" at {origin}={address}" if address else ""
        raise UserError(f"could not start or join Ray{where}: {first}") from None
