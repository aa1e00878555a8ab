"""Local fake LLM servers that the real SDKs reach over HTTP (no network, no keys).

    with FakeGemini(api_key="k", faults=FaultPlan(rate=0.2, seed=1)) as srv:
        cfg.base_url = srv.base_url
        ...
        srv.counts  # Counter of outcomes: ok, rate_limit, server_error, ... bad_request, unauthorized

Both fakes run a `ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port in a daemon thread,
validate requests as strictly as the real service (400 on malformed requests, 401/403 without a
key), answer schema-shaped JSON derived from the request's response schema (deterministic given
the prompt text: hash-based intensities), report usage per modality, and inject faults by rate
and seed. The fault of a request is a pure function of (seed, prompt text, n-th attempt of that
text), so runs are reproducible even under concurrency. `latency_s` makes every reply leave that
long after its request arrived (the fake's own work included), like a remote service would.

Both also answer their service's model listing (Gemini `GET v1beta/models[/{id}]`, OpenAI
`GET /v1/models[/{id}]`), retired model ids (the service's exact 404 body) and a per-key daily
quota that runs out (`daily_quota=N`).

`srv.lookups` counts the model lookups (`model_get`, `model_list`), which `srv.counts` leaves out.
`srv.requests` holds the JSON bodies of the accepted generate requests, `srv.log` one entry per
request (key = the user turn's text, outcome, attempt, usage), `srv.outcomes_for(text)` the
outcomes of the requests whose prompt contains `text`, `srv.max_in_flight` the peak concurrency.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

FAULT_KINDS = ("rate_limit", "server_error", "unavailable", "slow", "invalid_json", "safety", "max_tokens")

# the reject reason each injected fault must produce when it is the last thing a segment saw
FAULT_REASON = {
    "rate_limit": "labeler_rate_limited",
    "server_error": "labeler_server_error",
    "unavailable": "labeler_server_error",
    "slow": "labeler_timeout",
    "invalid_json": "labeler_invalid_output",
    "safety": "labeler_safety_block",
    "max_tokens": "labeler_max_tokens",
}


def _unit(*parts: Any) -> float:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class FaultPlan:
    """Inject a fault into `rate` of the requests, kinds drawn uniformly from `kinds`."""

    def __init__(
        self,
        rate: float = 0.0,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        slow_s: float = 2.0,
        retry_delay_s: float = 0.2,
    ):
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.slow_s = slow_s
        self.retry_delay_s = retry_delay_s

    def pick(self, key: str, attempt: int) -> Optional[str]:
        if self.rate <= 0 or not self.kinds:
            return None
        if _unit(self.seed, "fault", key, attempt) >= self.rate:
            return None
        return self.kinds[int(_unit(self.seed, "kind", key, attempt) * len(self.kinds)) % len(self.kinds)]


# ---------------------------------------------------------------- schema-shaped answers


def fake_value(schema: dict, seed: str, path: str = "$") -> Any:
    """A value of `schema`, deterministic in `seed`. Numbers in [minimum, maximum] are skewed
    towards the bottom (most emotions absent); an enum whose values are the keys of a sibling
    object of numbers picks the largest (primary = argmax of the intensities); an object with
    `start` and `end` numbers is a span (start <= end)."""
    if "enum" in schema:
        vals = schema["enum"]
        return vals[int(_unit(seed, path) * len(vals)) % len(vals)]
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        props = schema.get("properties", {})
        for name, sub in props.items():
            if "enum" not in sub:
                out[name] = fake_value(sub, seed, f"{path}.{name}")
        for name, sub in props.items():
            if "enum" in sub:
                vals = sub["enum"]
                table = next(
                    (v for v in out.values() if isinstance(v, dict) and set(vals) <= set(v) and len(vals) > 1), None
                )
                out[name] = max(vals, key=lambda k: table[k]) if table else fake_value(sub, seed, f"{path}.{name}")
        if isinstance(out.get("start"), (int, float)) and isinstance(out.get("end"), (int, float)):
            out["start"], out["end"] = sorted((out["start"], out["end"]))  # a span, as a model writes one
        return {name: out[name] for name in props}
    if typ in ("number", "integer"):
        lo = float(schema.get("minimum", 0.0))
        hi = float(schema.get("maximum", lo + 1.0))
        u = _unit(seed, path) ** 3
        v = lo + u * (hi - lo)
        return int(round(v)) if typ == "integer" else round(v, 3)
    if typ == "boolean":
        return _unit(seed, path) < 0.5
    if typ == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [fake_value(schema.get("items", {"type": "string"}), seed, f"{path}[{i}]") for i in range(n)]
    return f"fake {path.rsplit('.', 1)[-1]} {hashlib.sha256((seed + path).encode()).hexdigest()[:8]}"


_DURATIONS: dict[str, float] = {}


def media_seconds(data: bytes) -> float:
    """Duration of media bytes (PyAV), or a size heuristic (64 kB per second) when undecodable."""
    digest = hashlib.sha1(data).hexdigest()
    if digest not in _DURATIONS:
        _DURATIONS[digest] = _media_seconds(data)
    return _DURATIONS[digest]


def _media_seconds(data: bytes) -> float:
    try:
        import av

        with av.open(io.BytesIO(data)) as c:
            if c.duration:
                return float(c.duration) / 1_000_000
    except Exception:  # noqa: BLE001
        pass
    return len(data) / 64_000


def make_clip(path, seconds: float = 1.0, fps: float = 10.0, size: int = 64, sample_rate: int = 16000,
              seed: int = 0):
    """A tiny speaker clip (H.264 + AAC MP4) written with `mikupal.media.write_clip`."""
    import numpy as np

    from mikupal.media import write_clip

    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * fps)))
    frames = [np.full((size, size, 3), int(rng.integers(0, 255)), np.uint8) for _ in range(n)]
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    write_clip(path, frames, fps, audio, sample_rate)
    return path


def make_audio(path, seconds: float = 1.0, sample_rate: int = 16000):
    """A tiny FLAC of the vocals, written with `mikupal.media.write_audio`."""
    import numpy as np

    from mikupal.media import write_audio

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    write_audio(path, (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), sample_rate)
    return path


def tokens_of_text(text: str) -> int:
    return math.ceil(len(text) / 4)


# ---------------------------------------------------------------- server plumbing


class HttpError(Exception):
    def __init__(self, code: int, body: dict, headers: Optional[dict[str, str]] = None, outcome: str = "",
                 key: Optional[str] = None, **extra: Any):
        super().__init__(code)
        self.key = key
        self.extra = extra
        self.code = code
        self.body = body
        self.headers = headers or {}
        self.outcome = outcome or ("unauthorized" if code in (401, 403) else "bad_request" if code < 500 else "error")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        fake.enter()
        try:
            self._respond(fake, method)
        finally:
            fake.leave()

    def _respond(self, fake: "FakeServer", method: str) -> None:
        t0 = time.perf_counter()
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        try:
            status, payload, headers = fake.handle(method, self.path, dict(self.headers.items()), body)
        except HttpError as e:
            status, payload, headers = e.code, e.body, e.headers
            fake.record(e.key, e.outcome, status=e.code, path=self.path, **e.extra)
        except Exception as e:  # noqa: BLE001 - a bug in the fake is a 500, visible in counts
            status, payload, headers = 500, {"error": {"code": 500, "message": f"fake crashed: {e!r}"}}, {}
            fake.record(None, "fake_crash", status=500, path=self.path, error=repr(e))
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if fake.latency_s:  # the reply leaves `latency_s` after the request arrived, work included
            time.sleep(max(0.0, fake.latency_s - (time.perf_counter() - t0)))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            pass

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: "FakeServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up (timeouts, closed keep-alive connections)
        super().handle_error(request, client_address)


class FakeServer:
    """Runs `handle(method, path, headers, body) -> (status, json, headers)` on a background thread."""

    def __init__(self, faults: Optional[FaultPlan] = None, latency_s: float = 0.0):
        self.faults = faults or FaultPlan()
        self.latency_s = latency_s
        self.counts: Counter = Counter()
        self.lookups: Counter = Counter()  # model listing requests (get, list): kept out of `counts`
        self.log: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # the JSON bodies of accepted generate requests
        self._attempts: Counter = Counter()
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.in_flight = 0
        self.max_in_flight = 0

    # --------------------------------------------------------- lifecycle

    def start(self) -> "FakeServer":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --------------------------------------------------------- bookkeeping

    def next_attempt(self, key: str) -> int:
        with self._lock:
            n = self._attempts[key]
            self._attempts[key] += 1
            return n

    def record(self, key: Optional[str], outcome: str, **extra: Any) -> None:
        with self._lock:
            self.counts[outcome] += 1
            self.log.append({"key": key, "outcome": outcome, "t": time.monotonic(), **extra})

    def lookup(self, kind: str) -> None:
        with self._lock:
            self.lookups[kind] += 1

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def outcomes_for(self, needle: str) -> list[str]:
        """Outcomes of the generate requests whose prompt text contains `needle`, in order."""
        with self._lock:
            return [e["outcome"] for e in self.log if e.get("key") and needle in e["key"]]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):  # pragma: no cover
        raise NotImplementedError


def json_body(body: bytes, error: Callable[[str], HttpError]) -> Any:
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"Invalid JSON payload received. {e}") from None


from .gemini_server import FakeGemini  # noqa: E402
from .openai_server import FakeOpenAI  # noqa: E402

__all__ = ["FakeGemini", "FakeOpenAI", "FaultPlan", "FAULT_KINDS", "FAULT_REASON", "fake_value"]
