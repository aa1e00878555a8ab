"""Write benchmarks/README.md's measured tables and plots from benchmarks/results/*.json.

    python -m benchmarks.summary

Nothing here is typed in: every figure comes from a result file a benchmark script wrote, and
each table names the command that produced it.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
README = ROOT / "README.md"
START, END = "<!-- measured:start -->", "<!-- measured:end -->"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _plot_stages(stages: dict, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    names = list(stages)
    ax.barh(names, [stages[n] for n in names], color="#4e79a7")
    ax.set_xlabel("worker seconds")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _engine(run: dict) -> str:
    """The engine a run used, from its command (`engine=...`), else the default's choice on one machine."""
    for part in run.get("command", "").split():
        if part.startswith("engine="):
            return part.split("=", 1)[1]
    return "local"


def speed_section(minutes: int = 5) -> list[str]:
    r = _load(f"speed_{minutes}min")
    if not r:
        return [f"_No speed result yet: run `python -m benchmarks.pipeline speed --minutes {minutes}`._", ""]
    run, dec, naive = r["run"], r["decode_only"], r["naive_reference"]
    rep = run["report"]
    ratio_to_decode = dec["ffmpeg_speed_ratio"] / run["speed_ratio_whole_command"]
    _plot_stages(rep["stages"], ROOT / "speed_stages.png", f"{minutes} min 720p30, profile=cpu: time per stage")
    out = [
        f"### Speed: {minutes} minutes of 720p30 talking-head video ({r['when']}, {r['machine']['cpus']} cores)",
        "",
        f"Command: `{run['command']}` (timed whole, start-up included), via "
        f"`python -m benchmarks.pipeline speed --minutes {minutes}`.",
        "",
        "| what | wall s | speed ratio (media s / wall s) |",
        "|---|---|---|",
        f"| whole `mikupal run` (default engine: {_engine(run)}; profile=cpu, separation off, labeler off) | {run['wall_s']} | "
        f"**{run['speed_ratio_whole_command']}x** (its report: **{rep['speed_ratio']}x**) |",
        *([f"| the same under a local Ray (`engine=ray`) | {r['run_ray']['wall_s']} | "
           f"{r['run_ray']['speed_ratio_whole_command']}x (its report: {r['run_ray']['report']['speed_ratio']}x) |"]
          if "run_ray" in r else []),
        f"| decode-only limit: ffmpeg, all cores | {dec['ffmpeg_wall_s']} | {dec['ffmpeg_speed_ratio']}x |",
        f"| decode-only: PyAV, frame threads | {dec['pyav_wall_s']} | {dec['pyav_speed_ratio']}x |",
        f"| naive reference: YuNet on every full-res frame, one at a time (first {naive['seconds_of_media']:.0f} s) | {naive['wall_s']} | {naive['speed_ratio']}x ({naive['fps']} fps) |",
        "",
        f"Distance to the decode-only limit: {ratio_to_decode:.2f}x slower than ffmpeg decoding the same file "
        f"(target: within 4x). Retention {100 * rep['retention']:.1f}% ({rep['kept_seconds']:.0f} of "
        f"{rep['input_seconds']:.0f} s kept, {rep['segments']} segments). Peak RSS of the process tree "
        f"{run['peak_rss_mb']:.0f} MB.",
        "",
        *([f"What bounds it: the whole command used {run['cpu_s']} CPU s in {run['wall_s']} s ({run['cores_busy']} of "
           f"{r['machine']['cpus']} cores busy on average), {run['cpu_s'] / rep['input_seconds']:.3f} CPU s per media "
           "second: the cores are the limit, not waiting. The vision stage (decode at 25 fps, detection, ASD, clip "
           "export) is most of it (worker seconds below); the rest is transcription and a fixed cost before the first "
           "utterance reaches the vision pool (imports and models).", ""] if "cpu_s" in run else []),
        *([f"Under a local Ray the same run used {r['run_ray']['cpu_s']} CPU s and peaked at "
           f"{r['run_ray']['peak_rss_mb']:.0f} MB: Ray's own processes, a process (imports, models) per worker, "
           "and items copied between them."] + [""] if "run_ray" in r else []),
        *(["CPU seconds by process (user + system, sampled 5x/s; a stage's pool workers summed, their start-up "
           "and model loading included):", "", "| process | CPU s |", "|---|---|",
           *[f"| {k} | {v} |" for k, v in run["cpu_s_by_process"].items()], ""] if "cpu_s_by_process" in run else []),
        *(["Peak memory by process (sampled 5x/s; a pool's figure is its largest worker's; USS: the pages only that "
           "process holds, what it costs beside shared libraries; processes under 100 MB left out):", "",
           "| process | processes | peak RSS MB | peak USS MB |", "|---|---|---|---|", *_memory_rows(run), ""]
          if "memory_by_process" in run else []),
        "Worker seconds per stage (summed over workers; stages overlap in time):",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rep["stages"].items()],
        "",
        "![time per stage](speed_stages.png)",
        "",
        "Funnel (count and seconds after each stage):",
        "",
        "| stage | count | seconds |",
        "|---|---|---|",
        *[f"| {f['stage']} | {f['count']} | {f['seconds']} |" for f in rep["funnel"]],
        "",
    ]
    return out


def scaling_section() -> list[str]:
    r = _load("scaling")
    if not r:
        return ["_No scaling result yet: run `python -m benchmarks.pipeline scaling --minutes 10 60`._", ""]
    runs = r["runs"]
    keys = sorted(runs, key=int)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([int(k) for k in keys], [runs[k]["wall_s"] for k in keys], "o-", label="wall s")
    ax2 = ax.twinx()
    ax2.plot([int(k) for k in keys], [runs[k]["peak_rss_mb"] for k in keys], "s--", color="#e15759", label="peak RSS MB")
    ax.set_xlabel("input minutes")
    ax.set_ylabel("wall s")
    ax2.set_ylabel("peak RSS MB")
    fig.tight_layout()
    fig.savefig(ROOT / "scaling.png", dpi=100)
    plt.close(fig)
    return [
        f"### Scaling: {' vs '.join(keys)} minutes ({r['when']})",
        "",
        "Command: `python -m benchmarks.pipeline scaling --minutes " + " ".join(keys) + "`",
        "",
        "| input | wall s | speed ratio | peak RSS MB |",
        "|---|---|---|---|",
        *[f"| {k} min | {runs[k]['wall_s']} | {runs[k]['speed_ratio_whole_command']}x | {runs[k]['peak_rss_mb']} |" for k in keys],
        "",
        f"Input ratio {r['input_ratio']}x: time ratio **{r['time_ratio']}** (target <= 6.6), peak RSS ratio "
        f"**{r['peak_rss_ratio']}** (target <= 1.2).",
        "",
        "![scaling](scaling.png)",
        "",
    ]


def parallel_section() -> list[str]:
    r = _load("parallel")
    if not r:
        return ["_No parallelism result yet: run `python -m benchmarks.pipeline parallel`._", ""]
    return [
        f"### Parallelism: Ray pipeline vs the same stages in one process ({r['when']})",
        "",
        "Command: `python -m benchmarks.pipeline parallel --minutes 5` (the second run adds `engine=sequential`, "
        "the third `engine=sequential engine.threads=1`)",
        "",
        "| engine | wall s | speed ratio | CPU s (process tree) | cores busy on average | Ray's speed-up over it |",
        "|---|---|---|---|---|---|",
        *[_parallel_row(r, name, k) for name, k in PARALLEL_RUNS if k in r],
        "",
        f"Speed-up **{r['speedup']}x** over the one-process run with the libraries' own threads, on "
        f"{r['machine']['cpus']} cores (target >= 1.6x).",
        "",
        *_parallel_reading(r),
    ]


PARALLEL_RUNS = (
    ("Ray Data pipeline", "ray"),
    ("sequential, one process (libraries' own threads)", "sequential"),
    ("sequential, one process, one thread per library", "sequential_1thread"),
)


def _parallel_row(r: dict, name: str, key: str) -> str:
    run = r[key]
    gain = "-" if key == "ray" else f"{run['wall_s'] / r['ray']['wall_s']:.2f}x"
    return (f"| {name} | {run['wall_s']} | {run['speed_ratio_whole_command']}x | {run.get('cpu_s', '-')} | "
            f"{run.get('cores_busy', '-')} | {gain} |")


def _parallel_reading(r: dict) -> list[str]:
    """What bounds the speed-up, from the runs' own figures."""
    ray, seq = r["ray"], r["sequential"]
    if "cores_busy" not in ray or "cores_busy" not in seq:
        return []
    cpus = r["machine"]["cpus"]
    out = [
        f"Reading: the speed-up is (cores busy under Ray / cores busy in one process) x (CPU s in one process / "
        f"CPU s under Ray) = ({ray['cores_busy']} / {seq['cores_busy']}) x ({seq['cpu_s']} / {ray['cpu_s']}). "
        f"The single process already keeps {seq['cores_busy']} of {cpus} cores busy: its libraries thread "
        "(video decoder and encoder, torch, OpenCV, CTranslate2), so the pipeline can only add the remaining "
        f"{max(0.0, cpus - seq['cores_busy']):.2f} cores' worth, and it spends more CPU on the same work.",
        "",
    ]
    one, pair = r.get("sequential_1thread"), r.get("pair_1thread")
    if one and pair:
        out += [
            f"The machine is not the limit: two single-threaded one-process runs side by side finish in "
            f"{pair['wall_s']} s against {one['wall_s']} s for one alone (throughput x{pair['throughput_gain']}, "
            f"CPU s each {', '.join(str(c) for c in pair['cpu_s_each'])} against {one['cpu_s']}). The Ray run spends "
            f"{ray['cpu_s']} CPU s on the same video that one single-threaded process does in {one['cpu_s']}: Ray's "
            "own processes (GCS, raylet, dashboard agent, Ray Data's stats, autoscaling and locality actors, idle "
            "workers), the driver's streaming executor, and pool workers that each pay for their own start-up and "
            "models and share two cores three ways (ASR beside two vision workers). On 2 cores that overhead takes "
            "most of what running stages side by side gains; with more cores and more videos, the pools scale and the "
            "overhead stays fixed.",
            "",
        ]
    return out


def sweep_section() -> list[str]:
    r = _load("sweep")
    if not r:
        return ["_No sweep result yet: run `python -m benchmarks.pipeline sweep`._", ""]
    return [
        f"### Hydra multirun sweep over `{r['axis']}` ({r['when']})",
        "",
        f"Command: `{r['command']}`",
        "",
        "| run | wall s | speed ratio | segments |",
        "|---|---|---|---|",
        *[f"| {row['run']} | {row['wall_seconds']} | {row['speed_ratio']}x | {row['segments']} |" for row in r["rows"]],
        "",
    ]


def cost_section() -> list[str]:
    r = _load("cost")
    if not r:
        return ["_No cost result yet: run `python -m benchmarks.pipeline cost`._", ""]
    rep = r["report"]
    return [
        f"### Retention and labeler cost ({r['when']})",
        "",
        f"Command: `python -m benchmarks.pipeline cost` (runs `{r['command']}` against the fake Gemini server: the "
        f"real SDK over HTTP, token counts per modality as the service reports them, prices from config).",
        "",
        f"Input {rep['input_seconds']} s, kept {rep['kept_seconds']} s (retention {100 * rep['retention']:.1f}%). "
        f"Tokens in/out {rep['input_tokens']}/{rep['output_tokens']}. Cost {usd(rep['cost_usd'], 5)}, "
        f"**{usd(rep['cost_per_kept_hour_usd'])} per kept hour** with {r['model']} (the method's target: < $0.50/h).",
        "",
        "| stage | count | seconds |",
        "|---|---|---|",
        *[f"| {f['stage']} | {f['count']} | {f['seconds']} |" for f in rep["funnel"]],
        "",
        *_cost_by_model(r),
    ]


def usd(value, digits: int = 3) -> str:
    """$0.540, or "no price" for a model the price table lacks (cost null, never 0)."""
    return "no price" if value is None else f"${value:.{digits}f}"


def _kept_segments(r: dict) -> int:
    label = [f for f in r["report"]["funnel"] if f["stage"] == "label"]
    return int(label[0]["count"]) if label else 0


def _cost_by_model(r: dict) -> list[str]:
    models = r.get("models")
    if not models:
        return []
    return [
        f"The same clips labeled once per model id (token counts from the fake server, prices from config; Batch API "
        f"= the config's batch discount, x{r['batch_discount']}):",
        "",
        f"Output tokens are the fake server's answers ({r['report']['output_tokens'] / max(1, _kept_segments(r)):.0f} per "
        "utterance); real answers to the same schema may be longer, and output is the dearest token, so read these "
        "costs as a lower bound for the same input.",
        "",
        "| model | tokens in / out | cost per kept hour | with the Batch API |",
        "|---|---|---|---|",
        *[f"| {m} | {x['report']['input_tokens']} / {x['report']['output_tokens']} | "
          f"{usd(x['report']['cost_per_kept_hour_usd'])} | {usd(x['batch_cost_per_kept_hour_usd'])} |" for m, x in models.items()],
        "",
    ]


def cpu_scaling_section() -> list[str]:
    r = _load("cpu_scaling")
    if not r:
        return []
    return [
        f"### What two processes get from this machine's cores ({r['when']})",
        "",
        "Command: `python -m benchmarks.cpu_scaling` (each kind of single-threaded work alone, then two copies side "
        "by side; gain 2.0 = two independent cores).",
        "",
        "| work | one alone, s | two side by side, s | throughput gain |",
        "|---|---|---|---|",
        *[f"| {x['work']} | {x['one_s']} | {x['two_s']} | x{x['throughput_gain']} |" for x in r["rows"]],
        "",
    ]


def _memory_rows(run: dict) -> list[str]:
    return [f"| {k} | {v['processes']} | {v['peak_rss_mb']:.0f} | {v['peak_uss_mb']:.0f} |"
            for k, v in run.get("memory_by_process", {}).items() if v["peak_rss_mb"] >= 100]


def small_files_section(clips: int = 120) -> list[str]:
    r = _load(f"small_files_{clips}")
    if not r:
        return [f"_No small-files result yet: run `python -m benchmarks.pipeline small-files --clips {clips}`._", ""]
    best = r["best"]
    one, many = best["one_file"], best["clips"]
    ro, rm = one["report"], many["report"]
    stages = sorted(set(ro["stages"]) | set(rm["stages"]))
    out = [
        f"### Small clips: {clips} clips of 3-6 s against the same seconds as one file ({r['when']}, {r['machine']['cpus']} cores)",
        "",
        f"Command: `python -m benchmarks.pipeline small-files --clips {clips}"
        + (f" --repeat {len(r['rounds'])}" if len(r["rounds"]) > 1 else "") + "` (both sides timed whole, start-up "
        "included, one after the other in the same command: the host's speed varies). The clips are cut one after "
        "another from the 10-minute input (`benchmarks/inputs.py: small_clips`); the one file is them joined without "
        "re-encoding, so both sides hold the same media.",
        "",
        "| input | wall s | speed ratio | CPU s | segments | rejects | peak RSS MB (all processes) |",
        "|---|---|---|---|---|---|---|",
        f"| one file ({ro['input_seconds']:.0f} s) | {one['wall_s']} | {one['speed_ratio_whole_command']}x | {one['cpu_s']} | "
        f"{ro['segments']} | {ro['rejects']} | {one['peak_rss_mb']:.0f} |",
        f"| {clips} clips ({rm['input_seconds']:.0f} s) | {many['wall_s']} | {many['speed_ratio_whole_command']}x | "
        f"{many['cpu_s']} | {rm['segments']} | {rm['rejects']} | {many['peak_rss_mb']:.0f} |",
        "",
        f"The clips ran at **{100 * r['speed_of_one_file'][r['rounds'].index(best)]:.0f}%** of the one file's speed "
        f"(wall time; rounds: {', '.join(f'{100 * x:.0f}%' for x in r['speed_of_one_file'])}); in CPU seconds, "
        f"{100 * one['cpu_s'] / many['cpu_s']:.0f}%. Worker seconds per stage (summed over workers):",
        "",
        "| stage | one file | clips |",
        "|---|---|---|",
        *[f"| {k} | {ro['stages'].get(k, 0):.1f} | {rm['stages'].get(k, 0):.1f} |" for k in stages],
        "",
        "CPU seconds by process (a stage's pool workers summed):",
        "",
        "| process | one file | clips |",
        "|---|---|---|",
        *[f"| {k} | {one['cpu_s_by_process'].get(k, 0)} | {many['cpu_s_by_process'].get(k, 0)} |"
          for k in list(many["cpu_s_by_process"])[:8]],
        "",
        f"Peak memory by process, the {clips} clips' run (a pool's figure is its largest worker's; USS: the "
        "pages only that process holds; processes under 100 MB left out):",
        "",
        "| process | processes | peak RSS MB | peak USS MB |",
        "|---|---|---|---|",
        *_memory_rows(many),
        "",
    ]
    return out


def main() -> None:
    body = [START, ""]
    for section in (speed_section, small_files_section, scaling_section, parallel_section, cpu_scaling_section,
                    sweep_section, cost_section):
        body += section()
    body.append(END)
    text = README.read_text() if README.is_file() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(head + "\n".join(body) + tail)
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
