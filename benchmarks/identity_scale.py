"""Global speaker linking at scale: time and peak memory to link 100k per-video speakers.

Synthetic voices with the structure the real GE2E encoder shows on the shared clips
(benchmarks/results/voice_similarity.json): 256-d unit vectors, all in one cone (two whole voices
are 0.56 alike on average, sd 0.076, up to 0.75), with groups of closer voices (as sexes and accents
are), and each per-video speaker a noisy copy of its person (two such copies are ~0.88 alike, as two
6 s stretches of one voice are). People appear in 1 to many videos (a long tail: hosts), 1-4
speakers per video, never one person twice in one video. The realized figures are in the result.

Each phase runs in a child process of its own, so its peak RSS is its own:

* `link`: the linking rule alone on arrays (`speaker/global_ids.link`), all speakers as one run;
* `first_run`: `write_global_speakers` on an output dir with every speakers/<video>.parquet written
  (what the end of a run does: stat, read, link, save the registry, write global_speakers.parquet);
* `add_1pct`: a later run that commits 1% more speakers (the registry is loaded, not rebuilt);
* `no_change`: a run that commits nothing new;
* `exact`: at `--exact-speakers`, the same rule with an exact search instead of the index, for the
  id agreement between the two.

    python -m benchmarks.identity_scale --speakers 100000    # writes benchmarks/results/identity_scale.json
    python -m benchmarks.identity_scale ann --speakers 100000 --site DIR   # the index libraries compared
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .inputs import ROOT

RESULTS = ROOT / "benchmarks" / "results"
DIM = 256
#: squared shares of each part of a person's voice (sum 1): shared by all, by a group of half the
#: people (two), by a subgroup (eight per group), and the person's own
COMMON, GROUP, SUBGROUP = 0.56, 0.15, 0.10
GROUPS, SUBGROUPS = 2, 8
#: per-video noise: |noise|^2 of a per-video speaker's mean voice around its person's
VIDEO_NOISE = (0.04, 0.28)
SIMILARITY = 0.80  # conf/speaker/ge2e.yaml global_similarity


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def people_voices(n_people: int, rng: np.random.Generator) -> np.ndarray:
    g = _unit(rng.normal(size=DIM))
    groups = _unit(rng.normal(size=(GROUPS, DIM)))
    subs = _unit(rng.normal(size=(GROUPS * SUBGROUPS, DIM)))
    sub = rng.integers(0, GROUPS * SUBGROUPS, n_people)
    own = _unit(rng.normal(size=(n_people, DIM)))
    x = (np.sqrt(COMMON) * g + np.sqrt(GROUP) * groups[sub // SUBGROUPS] + np.sqrt(SUBGROUP) * subs[sub]
         + np.sqrt(1 - COMMON - GROUP - SUBGROUP) * own)
    return _unit(x)


def dataset(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(voices [n, 256] float32, person of each, video id of each): videos of 1-4 speakers,
    people drawn from a long tail (a third as many people as speakers)."""
    rng = np.random.default_rng(seed)
    n_people = max(2, n // 3)
    centres = people_voices(n_people, rng)
    weight = 1.0 / np.arange(1, n_people + 1) ** 0.9
    weight /= weight.sum()
    person = np.empty(n, dtype=np.int64)
    video: list[str] = []
    i = v = 0
    while i < n:
        k = min(n - i, int(rng.integers(1, 5)))
        person[i : i + k] = rng.choice(n_people, size=k, replace=False, p=weight)
        video += [f"{v:08x}"] * k
        i, v = i + k, v + 1
    noise = rng.uniform(*VIDEO_NOISE, size=n)
    x = centres[person] + np.sqrt(noise)[:, None] * _unit(rng.normal(size=(n, DIM)))
    return _unit(x), person, video


def realized(x: np.ndarray, person: np.ndarray, rng: np.random.Generator, pairs: int = 20000) -> dict:
    """Similarity figures of the synthetic speakers, to set beside the measured ones."""
    a, b = rng.integers(0, len(x), pairs), rng.integers(0, len(x), pairs)
    s = np.einsum("ij,ij->i", x[a], x[b])
    other = s[person[a] != person[b]]
    same = []
    for p in np.unique(person)[:2000]:
        idx = np.flatnonzero(person == p)
        if len(idx) >= 2:
            same.append(float(x[idx[0]] @ x[idx[1]]))
    q = lambda v, p: round(float(np.percentile(v, p)), 4)  # noqa: E731
    return {"two_people": {"mean": round(float(other.mean()), 4), "sd": round(float(other.std()), 4), "p99": q(other, 99),
                           "max": round(float(other.max()), 4)},
            "one_person_two_videos": {"mean": round(float(np.mean(same)), 4), "p5": q(same, 5), "p1": q(same, 1)}}


def scores(gids: np.ndarray, person: np.ndarray, video: list[str]) -> dict:
    """Purity and completeness of the global ids against the true people; broken cannot-links."""
    n = len(gids)
    pairs = np.stack([gids, person], axis=1)
    _, counts = np.unique(pairs, axis=0, return_counts=True)
    uniq = np.unique(pairs, axis=0)
    by_g: dict[int, int] = {}
    by_p: dict[int, int] = {}
    for (g, p), c in zip(uniq.tolist(), counts.tolist()):
        by_g[g] = max(by_g.get(g, 0), c)
        by_p[p] = max(by_p.get(p, 0), c)
    broken = n - len({(v, g) for v, g in zip(video, gids.tolist())})
    return {"global_speakers": int(len(np.unique(gids))), "people": int(len(np.unique(person))),
            "purity": round(sum(by_g.values()) / n, 4), "completeness": round(sum(by_p.values()) / n, 4),
            "cannot_links_broken": int(broken)}


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class ExactIndex:
    """The index's interface over an exact search: the reference for the index's effect on ids."""

    def __init__(self, dim: int):
        self.keys = np.zeros(0, dtype=np.int64)
        self.x = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys, vectors) -> None:
        self.keys = np.concatenate([self.keys, np.asarray(keys, dtype=np.int64)])
        self.x = np.concatenate([self.x, np.asarray(vectors, dtype=np.float32)])

    def search(self, vectors, count: int) -> np.ndarray:
        out = np.full((len(vectors), count), -1, dtype=np.int64)
        for s in range(0, len(vectors), 1024):
            sims = np.asarray(vectors[s : s + 1024]) @ self.x.T
            k = min(count, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            out[s : s + 1024, :k] = self.keys[top]
        return out


def _registry(x: np.ndarray, video: list[str]):
    from mikupal.speaker.registry import Registry

    reg = Registry(dim=DIM, voices=np.zeros((0, DIM), np.float32))
    sids = [f"{v}_S{k}" for k, v in enumerate(video)]
    reg.add(list(video), sids, list(video), x, np.zeros(len(x), dtype=np.int64))
    return reg


def phase_link(n: int, exact: bool = False) -> dict:
    from mikupal.speaker.global_ids import link

    x, person, video = dataset(n)
    reg = _registry(x, video)
    if exact:
        reg.index = ExactIndex(DIM)
    t = time.perf_counter()
    cpu = time.process_time()
    link(reg, np.arange(len(reg)), SIMILARITY)
    return {"seconds": round(time.perf_counter() - t, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "peak_rss_mb": _peak_mb(), **scores(reg.gids, person, video)}


def write_videos(out: Path, x: np.ndarray, video: list[str], start: int = 0) -> int:
    """speakers/<video>.parquet for each video, as the commit writes them (Speaker schema)."""
    import pyarrow as pa

    from mikupal import atomic, layout
    from mikupal.records import Speaker

    paths, schema = layout.OutputPaths(out), Speaker.arrow_schema()
    i, files = start, 0
    while i < len(video):
        j = i
        while j < len(video) and video[j] == video[i]:
            j += 1
        k = j - i
        emb = pa.ListArray.from_arrays(pa.array(np.arange(k + 1, dtype=np.int32) * DIM), pa.array(x[i:j].reshape(-1)))
        cols = [pa.array([f"{video[i]}_S{m + 1}" for m in range(k)]), pa.array([video[i]] * k), pa.array([f"{video[i]}.mp4"] * k),
                pa.array([1] * k, pa.int64()), pa.array([5.0] * k), emb, pa.array([None] * k, pa.string())]
        atomic.write_parquet(pa.Table.from_arrays(cols, schema=schema), paths.speakers(video[i]))
        i, files = j, files + 1
    return files


def phase_files(n: int, out: Path, step: str) -> dict:
    """One `write_global_speakers` call on the output dir (the files are written by `setup`)."""
    from mikupal import layout
    from mikupal.speaker.global_ids import write_global_speakers

    t = time.perf_counter()
    cpu = time.process_time()
    count = write_global_speakers(out, SIMILARITY)
    took = {"seconds": round(time.perf_counter() - t, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "peak_rss_mb": _peak_mb(), "global_speakers": count}
    import pyarrow.parquet as pq

    m = pq.read_table(layout.OutputPaths(out).global_speakers).to_pydict()
    took["rows"] = len(m["speaker_id"])
    return took


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.identity_scale", "_phase", *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_phase(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase")
    ap.add_argument("--speakers", type=int)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.phase in ("link", "exact"):
        res = phase_link(a.speakers, exact=a.phase == "exact")
    elif a.phase == "setup":
        x, _, video = dataset(a.speakers)
        cut = len(video) - len(video) // 100
        while 0 < cut < len(video) and video[cut] == video[cut - 1]:
            cut += 1  # a video is never split between the two runs
        t = time.perf_counter()
        res = {"videos_first_run": write_videos(a.out, x[:cut], video[:cut]), "speakers_first_run": cut,
               "seconds": round(time.perf_counter() - t, 1)}
    elif a.phase == "setup_more":
        x, _, video = dataset(a.speakers)
        cut = len(video) - len(video) // 100
        while 0 < cut < len(video) and video[cut] == video[cut - 1]:
            cut += 1
        res = {"videos_added": write_videos(a.out, x, video, start=cut), "speakers_added": len(video) - cut}
    else:
        res = phase_files(a.speakers, a.out, a.phase)
    print(json.dumps(res))


def scale(n: int, exact_n: int) -> dict:
    result: dict = {"command": f"python -m benchmarks.identity_scale --speakers {n}", "speakers": n, "similarity": SIMILARITY,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count()}
    x, person, _ = dataset(min(n, 50000))
    result["synthetic_voices"] = realized(x, person, np.random.default_rng(1))
    del x
    result["link"] = _child(["link", "--speakers", str(n)])
    print("link", result["link"], flush=True)
    with tempfile.TemporaryDirectory(prefix="identity_scale_") as tmp:
        out = Path(tmp)
        result["setup"] = _child(["setup", "--speakers", str(n), "--out", str(out)])
        result["first_run"] = _child(["first_run", "--speakers", str(n), "--out", str(out)])
        print("first run", result["first_run"], flush=True)
        result["setup_more"] = _child(["setup_more", "--speakers", str(n), "--out", str(out)])
        result["add_1pct"] = _child(["add_1pct", "--speakers", str(n), "--out", str(out)])
        result["no_change"] = _child(["no_change", "--speakers", str(n), "--out", str(out)])
        result["registry_bytes"] = sum(p.stat().st_size for p in (out / "global_speakers").iterdir())
    if exact_n:
        result["exact_vs_index"] = {"speakers": exact_n, "exact": _child(["exact", "--speakers", str(exact_n)]),
                                    "index": _child(["link", "--speakers", str(exact_n)])}
    return result


README = ROOT / "benchmarks" / "README.md"
BLOCK = ("<!-- identity_scale:start -->", "<!-- identity_scale:end -->")


def readme_section(r: dict) -> list[str]:
    """benchmarks/README.md's "Identity at scale" block, from the result file."""
    lk, first, more, same = r["link"], r["first_run"], r["add_1pct"], r["no_change"]
    syn = r["synthetic_voices"]
    out = [f"### Identity at scale: {r['speakers']:,} per-video speakers ({r['date']}, {r['cores']} cores)", "",
           f"Command: `{r['command']}`. Synthetic 256-d voices shaped like GE2E's on the shared clips: two people "
           f"{syn['two_people']['mean']} alike on average (sd {syn['two_people']['sd']}, p99 {syn['two_people']['p99']}; "
           f"measured: 0.56, sd 0.076, up to 0.75), one person in two videos {syn['one_person_two_videos']['mean']} "
           f"(p5 {syn['one_person_two_videos']['p5']}; measured for two 6 s stretches: 0.88, p5 0.80). Each phase is a "
           "process of its own (peak RSS is the whole process's). The host is shared: CPU seconds are the steadier figure.", "",
           "| phase | wall s | CPU s | peak RSS MB | what |", "|---|---|---|---|---|",
           f"| link | {lk['seconds']} | {lk['cpu_seconds']} | {lk['peak_rss_mb']} | the rule alone, all speakers at once (index build and search included) |",
           f"| first run | {first['seconds']} | {first['cpu_seconds']} | {first['peak_rss_mb']} | `write_global_speakers` over {r['setup']['videos_first_run']:,} "
           f"`speakers/*.parquet` files: read, link, save the registry, write global_speakers.parquet |",
           f"| 1% more | {more['seconds']} | {more['cpu_seconds']} | {more['peak_rss_mb']} | a later run that committed {r['setup_more']['videos_added']} videos "
           f"({r['setup_more']['speakers_added']} speakers): the registry is loaded, only they are linked |",
           f"| no change | {same['seconds']} | {same['cpu_seconds']} | {same['peak_rss_mb']} | a run that committed nothing |", "",
           f"Ids against the true people: purity {lk['purity']}, completeness {lk['completeness']} ({lk['global_speakers']:,} global "
           f"speakers for {lk['people']:,} people at `global_similarity` {r['similarity']}); two speakers of one video sharing an id: "
           f"{lk['cannot_links_broken']}. Registry on disk: {r['registry_bytes'] / 2**20:.0f} MB."]
    ex = r.get("exact_vs_index")
    if ex:
        out += ["", f"The index against an exact search, {ex['speakers']:,} speakers: purity/completeness {ex['index']['purity']}/"
                f"{ex['index']['completeness']} with the index, {ex['exact']['purity']}/{ex['exact']['completeness']} exact."]
    ann = r.get("ann_choice")
    if ann:
        out += ["", f"Index libraries, same HNSW graph (connectivity {ann['graph']['connectivity']}, expansion "
                f"{ann['graph']['expansion_add']}/{ann['graph']['expansion_search']}), {ann['results'][0].get('speakers', 0):,} voices, "
                f"each searched for its {ann['graph']['k']} nearest (`{ann['command']}`, {ann['date']}):", "",
                "| library | build wall s | build CPU s | search wall s | search CPU s | recall@10 | same person among the 32 |",
                "|---|---|---|---|---|---|---|"]
        for a in ann["results"]:
            if "error" in a:
                out.append(f"| {a['library']} | not installed: {a['error']} | | | | | |")
            else:
                out.append(f"| {a['library']} | {a['build_s']} | {a['build_cpu_s']} | {a['search_s']} | {a['search_cpu_s']} | "
                           f"{a['recall_at_10']} | {a['candidate_recall']} |")
    return out


def write_readme(r: dict) -> None:
    text = README.read_text()
    block = "\n".join([BLOCK[0], "", *readme_section(r), "", BLOCK[1]])
    if BLOCK[0] in text:
        head, rest = text.split(BLOCK[0], 1)
        text = head + block + rest.split(BLOCK[1], 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_phase":
        return run_phase(argv[1:])
    if argv and argv[0] == "ann":
        from .ann_choice import main as ann_main

        return ann_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speakers", type=int, default=100000)
    ap.add_argument("--exact-speakers", type=int, default=20000, help="also link this many with an exact search (0: skip)")
    ap.add_argument("--out", type=Path, default=RESULTS / "identity_scale.json")
    a = ap.parse_args(argv)
    result = scale(a.speakers, a.exact_speakers)
    old = json.loads(a.out.read_text()) if a.out.is_file() else {}
    old.update({k: v for k, v in result.items()})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(old, indent=1) + "\n")
    if a.out == RESULTS / "identity_scale.json":
        write_readme(old)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
