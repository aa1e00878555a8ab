"""Which nearest-neighbour library serves global speaker linking: usearch, faiss-cpu or hnswlib.

The same HNSW graph in each (16 links per node, 128 candidates while building, 96 while searching;
inner product on unit vectors) over the synthetic voices of `benchmarks.identity_scale`, built in
one batch and searched for each voice's 32 nearest (what `speaker/global_ids.link` does with a run's
new speakers), on all cores. Wall and CPU seconds (the host is shared: CPU seconds are the steadier
figure), recall@10 against an exact search, and the share of speakers whose person's other
speakers are among the 32 returned (`candidate_recall`: what linking needs). Only usearch is a
dependency; install the others beside it to compare (`pip install --target DIR faiss-cpu hnswlib`).

    python -m benchmarks.identity_scale ann --speakers 100000 [--site DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .inputs import ROOT

#: usearch with 32-bit floats, and with 8-bit integers (what speaker/voice_index.py stores: the exact
#: similarity is computed afterwards from the float voices, the index only finds candidates)
LIBRARIES = ("usearch", "usearch-i8", "faiss", "hnswlib")
M, EF_ADD, EF_SEARCH, K = 16, 128, 96, 32


def _build_and_search(lib: str, x: np.ndarray, threads: int, ef_add: int = EF_ADD, ef_search: int = EF_SEARCH):
    d = x.shape[1]
    keys = np.arange(len(x))
    if lib.startswith("usearch"):
        from usearch.index import Index

        dtype = lib.split("-")[1] if "-" in lib else "f32"
        idx = Index(ndim=d, metric="ip", dtype=dtype, connectivity=M, expansion_add=ef_add, expansion_search=ef_search)
        idx.add(keys, x, threads=threads)
        yield "built"
        yield np.asarray(idx.search(x, K, threads=threads).keys, dtype=np.int64)
    elif lib == "hnswlib":
        import hnswlib

        idx = hnswlib.Index(space="ip", dim=d)
        idx.init_index(max_elements=len(x), ef_construction=ef_add, M=M)
        idx.add_items(x, keys, num_threads=threads)
        idx.set_ef(ef_search)
        yield "built"
        yield idx.knn_query(x, k=K, num_threads=threads)[0].astype(np.int64)
    elif lib == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
        idx = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = ef_add
        idx.add(x)
        idx.hnsw.efSearch = ef_search
        yield "built"
        yield idx.search(x, K)[1].astype(np.int64)


def measure(lib: str, n: int, threads: int, ef_add: int = EF_ADD, ef_search: int = EF_SEARCH) -> dict:
    from .identity_scale import dataset

    x, person, _ = dataset(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = _build_and_search(lib, x, threads, ef_add, ef_search)
    t, cpu = time.perf_counter(), time.process_time()
    next(steps)
    build = (time.perf_counter() - t, time.process_time() - cpu)
    t, cpu = time.perf_counter(), time.process_time()
    found = next(steps)
    search = (time.perf_counter() - t, time.process_time() - cpu)
    rng = np.random.default_rng(0)
    q = rng.choice(n, 500, replace=False)
    hits = 0
    for j in q:
        exact = set(np.argsort(-(x @ x[j]))[:10].tolist())
        row = found[j][found[j] >= 0]
        best = set(row[np.argsort(-(x[row] @ x[j]))[:10]].tolist())
        hits += len(exact & best)
    # what linking needs: some other speaker of the same person among the K returned
    many = np.bincount(person)[person] >= 2
    cand = [bool(np.any((person[found[j][found[j] >= 0]] == person[j]) & (found[j][found[j] >= 0] != j)))
            for j in np.flatnonzero(many)[:20000]]
    return {"library": lib, "speakers": n, "threads": threads, "expansion_add": ef_add, "expansion_search": ef_search, "build_s": round(build[0], 1), "build_cpu_s": round(build[1], 1),
            "search_s": round(search[0], 1), "search_cpu_s": round(search[1], 1), "recall_at_10": round(hits / 5000, 4),
            "candidate_recall": round(float(np.mean(cand)), 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "rss_before_mb": round(base, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speakers", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--site", type=Path, help="a folder where faiss-cpu and hnswlib are installed (pip install --target)")
    ap.add_argument("--one", help="measure one library and print its figures (nothing is written)")
    ap.add_argument("--expansion-add", type=int, default=EF_ADD)
    ap.add_argument("--expansion-search", type=int, default=EF_SEARCH)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "identity_scale.json")
    a = ap.parse_args(argv)
    if a.site:
        sys.path.append(str(a.site))
    if a.one:
        print(json.dumps(measure(a.one, a.speakers, a.threads, a.expansion_add, a.expansion_search)))
        return
    rows = []
    for lib in LIBRARIES:
        cmd = [sys.executable, "-m", "benchmarks.identity_scale", "ann", "--one", lib, "--speakers", str(a.speakers),
               "--threads", str(a.threads)] + (["--site", str(a.site)] if a.site else [])
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            rows.append({"library": lib, "error": (done.stderr.strip().splitlines() or ["?"])[-1]})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    old = json.loads(a.out.read_text()) if a.out.is_file() else {}
    old["ann_choice"] = {"command": f"python -m benchmarks.identity_scale ann --speakers {a.speakers}",
                         "date": time.strftime("%Y-%m-%d %H:%M:%S"), "graph": {"connectivity": M, "expansion_add": EF_ADD,
                                                                               "expansion_search": EF_SEARCH, "k": K},
                         "results": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(old, indent=1) + "\n")
    from .identity_scale import RESULTS, write_readme

    if a.out == RESULTS / "identity_scale.json" and "link" in old:
        write_readme(old)


if __name__ == "__main__":
    main()
