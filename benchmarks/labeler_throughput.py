"""Labeler pool throughput against a fake Gemini server with a fixed latency.

Ideal wall time for R requests at concurrency C and latency L: ceil(R / C) * L. The pool's
efficiency is ideal / measured; bounded concurrency, the rate limiters, the budget bookkeeping and
the SDK's per-request work should cost less than 10 %.

The fake server runs in its own process (as the real service would be remote), so the SDK's
client-side CPU does not compete with the server for the GIL. Requests are real video-mode
requests: a 1 s MP4 clip inline (base64) plus the transcript, through google-genai's async client.

    python benchmarks/labeler_throughput.py                         # 64 requests, concurrency 16, 1 s
    python benchmarks/labeler_throughput.py --requests 256 --concurrency 64 --md benchmarks/labeler_throughput.md
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-key"


def _serve(backend: str, latency_s: float, port_q, stop_ev, counts_q) -> None:  # the server process
    sys.path.insert(0, str(ROOT))
    from tests.fakes import FakeGemini, FakeOpenAI

    fake = FakeOpenAI if backend == "openai" else FakeGemini
    with fake(api_key=KEY, latency_s=latency_s) as srv:
        port_q.put(srv.port)
        stop_ev.wait()
        counts_q.put((dict(srv.counts), srv.max_in_flight))


def _sleep_labeler(cfg, taxonomy, latency_s: float):
    """No HTTP at all: answers a schema-valid JSON after `latency_s` (the pool's own overhead)."""
    import json

    from mikupal.labelers.base import Answer, Labeler, Usage
    from tests.fakes import fake_value

    class SleepLabeler(Labeler):
        kind = "sleep"

        def estimate_input(self, request):
            return {"text": 2000, "video": 132, "audio": 64}

        async def generate(self, request, sample=0):
            await asyncio.sleep(latency_s)
            text = json.dumps(fake_value(self.schema.json_schema(), request.transcript))
            return Answer(text, Usage({"text": 2000, "video": 132, "audio": 64}, 200), cfg.model)

    return SleepLabeler(cfg, taxonomy, KEY)


def run_benchmark(requests: int = 64, concurrency: int = 16, latency_s: float = 1.0, backend: str = "gemini") -> dict:
    """backend: gemini (google-genai, video mode), openai (openai SDK, text mode) or pool (no HTTP)."""
    from mikupal.config import compose
    from mikupal.labelers import LabelRequest, make_labeler
    from mikupal.labelers.pool import LabelPool
    from mikupal.taxonomy import load_taxonomy
    from tests.fakes import make_clip

    ctx = mp.get_context("spawn")
    port_q, counts_q, stop_ev = ctx.Queue(), ctx.Queue(), ctx.Event()
    proc = None
    if backend != "pool":
        proc = ctx.Process(target=_serve, args=(backend, latency_s, port_q, stop_ev, counts_q), daemon=True)
        proc.start()
    try:
        port = port_q.get(timeout=60) if proc else 0
        with tempfile.TemporaryDirectory() as d:
            clip = make_clip(Path(d) / "clip.mp4", seconds=1.0)
            kind = "openai" if backend == "openai" else "gemini"
            url = f"http://127.0.0.1:{port}" + ("/v1" if backend == "openai" else "")
            mode = "text" if backend == "openai" else "video"
            cfg = compose([
                f"labeler={kind}", f"labeler.base_url={url}", f"labeler.mode={mode}",
                f"labeler.requests_in_flight={concurrency}", "labeler.requests_per_minute=1000000",
                "labeler.tokens_per_minute=1000000000", f"labeler.timeout_s={max(30.0, 10 * latency_s)}",
            ]).labeler
            reqs = [LabelRequest(f"s{i}", f"benchmark utterance {i}", mode, clip_path=clip, duration=1.0)
                    for i in range(requests)]

            async def go():
                tax = load_taxonomy("cowen_keltner_26")
                lab = _sleep_labeler(cfg, tax, latency_s) if backend == "pool" else make_labeler(cfg, tax, KEY)
                pool = LabelPool(lab)
                # one warm-up request outside the clock: connection setup and first-call imports
                await pool.label(LabelRequest("warm", "warm up", "video", clip_path=clip, duration=1.0))
                t0, c0 = time.perf_counter(), time.process_time()
                res = await pool.label_many(reqs)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                await lab.aclose()
                return res, wall, cpu, pool.max_in_flight

            load_before = os.getloadavg()[0]
            results, wall, cpu, max_in_flight = asyncio.run(go())
        stop_ev.set()
        counts, server_max = counts_q.get(timeout=30) if proc else ({}, max_in_flight)
    finally:
        stop_ev.set()
        if proc:
            proc.join(timeout=10)
    ideal = math.ceil(requests / concurrency) * latency_s
    ok = sum(r.ok for r in results)
    return {
        "backend": backend,
        "requests": requests,
        "concurrency": concurrency,
        "latency_s": latency_s,
        "ideal_s": ideal,
        "wall_s": wall,
        "efficiency": ideal / wall,
        "throughput_rps": requests / wall,
        "ok": ok,
        "max_in_flight": max_in_flight,
        "client_cpu_ms_per_request": 1000 * cpu / requests,
        "load_avg": load_before,
        "server_max_in_flight": server_max,
        "server_counts": counts,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--backend", choices=["gemini", "openai", "pool"], default="gemini",
                    help="gemini: google-genai, video mode (default); openai: openai SDK, text mode; "
                         "pool: no HTTP, the pool's own overhead")
    ap.add_argument("--md", type=Path, help="append the result table to this Markdown file")
    a = ap.parse_args(argv)
    rows = [run_benchmark(a.requests, a.concurrency, a.latency, a.backend) for _ in range(a.repeat)]
    lines = [
        "| backend | requests | concurrency | latency (s) | ideal (s) | measured (s) | efficiency | req/s | in flight (max) "
        "| client CPU / request | load avg (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['requests']} | {r['concurrency']} | {r['latency_s']:g} | {r['ideal_s']:.2f} | {r['wall_s']:.2f} "
            f"| {100 * r['efficiency']:.1f} % | {r['throughput_rps']:.1f} | {r['max_in_flight']} "
            f"| {r['client_cpu_ms_per_request']:.1f} ms | {r['load_avg']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    for r in rows:
        print(f"ok={r['ok']}/{r['requests']} server={r['server_counts']}")
    if a.md:
        cmd = "python benchmarks/labeler_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(a.md, "a", encoding="utf-8") as f:
            f.write(f"\n`{cmd.strip()}` on {platform.node() or 'host'} "
                    f"({mp.cpu_count()} CPUs, Python {platform.python_version()}):\n\n{table}\n")
    return 0 if all(r["ok"] == r["requests"] and r["efficiency"] >= 0.9 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
