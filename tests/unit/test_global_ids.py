"""Global speaker ids: stable across runs, incremental, and never two speakers of one video.

Real files in a real output layout (speakers/<key>.parquet as the commit writes them), the real
usearch index; voices are synthetic unit vectors with GE2E-like structure (benchmarks/identity_scale.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mikupal import atomic, layout
from mikupal.records import Speaker
from mikupal.speaker.global_ids import link, link_across_videos, write_global_speakers
from mikupal.speaker.registry import Registry

DIM = 64
SIM = 0.8


def people(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def heard(v: np.ndarray, rng: np.random.Generator, noise: float = 0.15) -> list[float]:
    x = v + noise * rng.normal(size=len(v)) / np.sqrt(len(v))
    return (x / np.linalg.norm(x)).astype(np.float32).tolist()


def commit_speakers(out: Path, video: str, voices: list[list[float]]) -> None:
    """speakers/<video>.parquet as `engine/commit.py` writes it."""
    rows = [Speaker(speaker_id=f"{video}_S{k + 1}", video_id=video, source=f"{video}.mp4", segments=1, seconds=5.0, embedding=v)
            for k, v in enumerate(voices)]
    atomic.write_parquet(Speaker.to_table(rows), layout.OutputPaths(out).speakers(video))


def mapping(out: Path) -> dict[str, str]:
    t = pq.read_table(out / layout.GLOBAL_SPEAKERS)
    assert t.column_names == ["speaker_id", "video_id", "global_speaker_id"]
    return {r["speaker_id"]: r["global_speaker_id"] for r in t.to_pylist()}


def test_ids_given_are_kept_when_later_runs_add_videos(tmp_path):
    rng = np.random.default_rng(1)
    p = people(6)
    commit_speakers(tmp_path, "v1", [heard(p[0], rng), heard(p[1], rng)])
    commit_speakers(tmp_path, "v2", [heard(p[0], rng), heard(p[2], rng)])
    assert write_global_speakers(tmp_path, SIM) == 3
    first = mapping(tmp_path)
    assert first["v1_S1"] == first["v2_S1"] and len(set(first.values())) == 3
    # a later run: more videos, some of the same people, some new
    commit_speakers(tmp_path, "v0", [heard(p[3], rng), heard(p[1], rng)])  # sorts before the others
    commit_speakers(tmp_path, "v3", [heard(p[2], rng), heard(p[4], rng), heard(p[0], rng)])
    write_global_speakers(tmp_path, SIM)
    second = mapping(tmp_path)
    assert {k: second[k] for k in first} == first  # nothing given before has changed
    assert second["v0_S2"] == first["v1_S2"] and second["v3_S1"] == first["v2_S2"] and second["v3_S3"] == first["v1_S1"]
    assert second["v0_S1"] not in first.values() and second["v3_S2"] not in first.values()
    assert len(set(second.values())) == 5


def test_a_redone_video_keeps_its_ids_and_numbers_are_never_reused(tmp_path):
    rng = np.random.default_rng(2)
    p = people(4)
    voices = {"v1": [heard(p[0], rng)], "v2": [heard(p[1], rng)], "v3": [heard(p[2], rng)]}
    for v, e in voices.items():
        commit_speakers(tmp_path, v, e)
    write_global_speakers(tmp_path, SIM)
    before = mapping(tmp_path)
    # a resumed run redoes v2: the file is removed and written again, same speakers, same voices
    paths = layout.OutputPaths(tmp_path)
    paths.speakers("v2").unlink()
    commit_speakers(tmp_path, "v2", voices["v2"])
    os.utime(paths.speakers("v2"), ns=(1, 1))  # certainly another stamp than before
    write_global_speakers(tmp_path, SIM)
    assert mapping(tmp_path) == before
    # v3 is gone from the output, and v2 comes back as someone else: their numbers are not given again
    paths.speakers("v3").unlink()
    commit_speakers(tmp_path, "v2", [heard(p[3], rng)])
    commit_speakers(tmp_path, "v4", [heard(p[2], rng)])
    write_global_speakers(tmp_path, SIM)
    after = mapping(tmp_path)
    assert set(after) == {"v1_S1", "v2_S1", "v4_S1"}
    assert after["v1_S1"] == before["v1_S1"]
    assert after["v2_S1"] not in before.values() and after["v4_S1"] not in before.values()


def test_a_damaged_index_is_rebuilt_with_the_same_ids(tmp_path):
    rng = np.random.default_rng(3)
    p = people(3)
    for k in range(3):
        commit_speakers(tmp_path, f"v{k}", [heard(p[k], rng), heard(p[(k + 1) % 3], rng)])
    write_global_speakers(tmp_path, SIM)
    before = mapping(tmp_path)
    reg = Registry.load(layout.OutputPaths(tmp_path))
    index_file = layout.OutputPaths(tmp_path).global_index(reg.generation)
    index_file.write_bytes(b"<html>not an index</html>")
    commit_speakers(tmp_path, "v9", [heard(p[1], rng)])
    write_global_speakers(tmp_path, SIM)
    after = mapping(tmp_path)
    assert {k: after[k] for k in before} == before
    assert after["v9_S1"] == before["v0_S2"]


def test_a_crash_before_the_manifest_leaves_the_last_registry(tmp_path):
    rng = np.random.default_rng(4)
    p = people(2)
    commit_speakers(tmp_path, "v1", [heard(p[0], rng)])
    write_global_speakers(tmp_path, SIM)
    paths = layout.OutputPaths(tmp_path)
    reg = Registry.load(paths)
    # a save that died after the new generation's voices and before the manifest
    paths.global_voices(reg.generation + 1).write_bytes(b"half a parquet file")
    commit_speakers(tmp_path, "v2", [heard(p[0], rng)])
    write_global_speakers(tmp_path, SIM)
    m = mapping(tmp_path)
    assert m["v2_S1"] == m["v1_S1"] == "G1"
    assert sorted(x.name for x in paths.global_registry.parent.iterdir()) == sorted(
        [paths.global_registry.name, paths.global_voices(reg.generation + 1).name, paths.global_index(reg.generation + 1).name])


def test_speakers_without_a_voice_get_no_global_id(tmp_path):
    commit_speakers(tmp_path, "v1", [[]])
    assert write_global_speakers(tmp_path, SIM) == 0
    assert mapping(tmp_path) == {"v1_S1": ""}
    rng = np.random.default_rng(5)
    commit_speakers(tmp_path, "v2", [heard(people(1)[0], rng)])
    assert write_global_speakers(tmp_path, SIM) == 1
    assert mapping(tmp_path) == {"v1_S1": "", "v2_S1": "G1"}


def test_an_empty_output_has_no_global_speakers(tmp_path):
    assert write_global_speakers(tmp_path, SIM) == 0
    assert not (tmp_path / layout.GLOBAL_SPEAKERS).exists()


@pytest.mark.parametrize("seed", range(30))
def test_two_speakers_of_one_video_never_share_a_global_id(seed):
    """Everyone sounds nearly alike, videos hold several speakers: the most a link could want."""
    rng = np.random.default_rng(100 + seed)
    base = people(1, seed)[0]
    crowd = base + 0.3 * people(int(rng.integers(2, 8)), seed + 1)
    crowd /= np.linalg.norm(crowd, axis=1, keepdims=True)
    speakers = []
    for v in range(int(rng.integers(2, 25))):
        for k in range(int(rng.integers(1, 5))):
            speakers.append((f"vid{v}_S{k + 1}", heard(crowd[int(rng.integers(0, len(crowd)))], rng, noise=0.3)))
    links = link_across_videos(speakers, float(rng.uniform(0.0, 0.95)))
    seen: dict[tuple[str, str], str] = {}
    for sid, g in links.items():
        video = sid.rsplit("_S", 1)[0]
        assert (video, g) not in seen, f"{sid} and {seen.get((video, g))} share {g}"
        seen[(video, g)] = sid


def test_the_best_match_wins_a_contested_global_speaker():
    """Two speakers of a new video both sound like G1: the closer one gets it, the other is new."""
    p = people(1)[0]
    rng = np.random.default_rng(6)
    near, far = np.asarray(heard(p, rng, 0.05)), np.asarray(heard(p, rng, 0.6))
    links = link_across_videos([("a_S1", p.tolist()), ("b_S1", far.tolist()), ("b_S2", near.tolist())], 0.5)
    assert links["b_S2"] == links["a_S1"] != links["b_S1"]


def test_linking_in_two_steps_equals_linking_at_once_for_separate_people():
    """The registry carries everything a later run needs: two runs give the ids one run gives."""
    rng = np.random.default_rng(7)
    p = people(50, 7)
    speakers = [(f"v{v:03d}_S{k + 1}", heard(p[int(rng.integers(0, 50))], rng)) for v in range(120) for k in range(2)]
    once = link_across_videos(speakers, SIM)
    reg = Registry(dim=DIM, voices=np.zeros((0, DIM), np.float32))
    for half in (speakers[: len(speakers) // 2], speakers[len(speakers) // 2 :]):
        start = len(reg)
        reg.add([s.rsplit("_S", 1)[0] for s, _ in half], [s for s, _ in half], [s.rsplit("_S", 1)[0] for s, _ in half],
                np.asarray([e for _, e in half], np.float32), np.zeros(len(half), np.int64))
        link(reg, np.arange(start, len(reg)), SIM)
    twice = {sid: f"G{g}" for sid, g in zip(reg.speaker_ids, reg.gids.tolist())}
    assert twice == once


def test_an_output_linked_before_the_registry_keeps_its_ids(tmp_path):
    """global_speakers.parquet from the old end-of-run clustering, no registry: its ids stay, except
    where it gave two speakers of one video one id (that one is linked again)."""
    import pyarrow as pa

    rng = np.random.default_rng(8)
    p = people(3)
    commit_speakers(tmp_path, "v1", [heard(p[0], rng), heard(p[1], rng)])
    commit_speakers(tmp_path, "v2", [heard(p[0], rng)])
    old = pa.table({"speaker_id": ["v1_S1", "v1_S2", "v2_S1"], "video_id": ["v1", "v1", "v2"], "global_speaker_id": ["G7", "G7", "G7"]})
    atomic.write_parquet(old, tmp_path / layout.GLOBAL_SPEAKERS)
    write_global_speakers(tmp_path, SIM)
    m = mapping(tmp_path)
    assert m["v1_S1"] == m["v2_S1"] == "G7"
    assert m["v1_S2"] == "G8"  # the next number after every number the old file gave


def test_a_registry_damaged_by_hand_takes_over_the_ids_it_published(tmp_path, caplog):
    rng = np.random.default_rng(9)
    p = people(3)
    for k in range(3):
        commit_speakers(tmp_path, f"v{k}", [heard(p[k], rng)])
    write_global_speakers(tmp_path, SIM)
    before = mapping(tmp_path)
    paths = layout.OutputPaths(tmp_path)
    paths.global_voices(Registry.load(paths).generation).write_bytes(b"truncated")
    commit_speakers(tmp_path, "v9", [heard(p[2], rng)])
    write_global_speakers(tmp_path, SIM)
    after = mapping(tmp_path)
    assert {k: after[k] for k in before} == before and after["v9_S1"] == before["v2_S1"]
    assert "unreadable" in caplog.text
    assert Registry.load(paths).generation >= 1  # whole again
