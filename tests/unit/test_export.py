"""`mikupal export`: each format read back by its own library (datasets, lhotse, webdataset, the list
file), standing alone (global speaker, source, measured columns, word times in the exported audio,
clips embedded or left out), the filters and their errors, and the train/test split by person."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.cli import main
from mikupal.dataset.export import ExportArgs, export, split_by_speaker
from mikupal.dataset.rows import speaker_of
from tests.dataset_fixtures import GLOBAL
from mikupal.errors import UserError
from tests.dataset_fixtures import RATE, all_rows, make_output


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return make_output(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def rows(out_dir):
    return {r["segment_id"]: r for r in all_rows(out_dir)}


def run_export(out_dir: Path, dest: Path, fmt: str, *extra: str) -> dict:
    assert main(["export", f"input={out_dir}", f"format={fmt}", f"output={dest}", *extra]) == 0
    return json.loads((dest / "export.json").read_text())


def test_hf_dataset_has_an_audio_column_that_decodes(out_dir, rows, tmp_path):
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("torchcodec")
    run_export(out_dir, tmp_path / "hf", "hf", "loudness=null")  # the audio as the run wrote it
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == len(rows)
    assert isinstance(ds.features["audio"], datasets.Audio) and ds.features["audio"].sampling_rate == RATE
    for ex in ds:
        src = rows[ex["segment_id"]]
        samples = ex["audio"].get_all_samples()
        assert samples.sample_rate == RATE
        assert samples.data.shape[-1] == pytest.approx(src["duration"] * RATE, abs=2)
        expected, _ = sf.read(out_dir / src["audio_path"], dtype="float32")
        assert np.allclose(samples.data.numpy().reshape(-1), expected, atol=1e-4)
        assert ex["speaker_id"] == speaker_of(src) and ex["text"] == src["text"]
        assert ex["global_speaker_id"] == GLOBAL.get(src.get("speaker_id"))
        assert ex["source"] == src["source"] and ex["source_start"] == src["start"] and ex["source_end"] == src["end"]
        assert ex["snr_db"] == pytest.approx(src["snr_db"]) and ex["asd_score"] == pytest.approx(src["asd_score"])
        assert ex["primary_emotion"] == src["primary_emotion"] and len(ex["emotions"]) == 26
        assert ex["dnsmos_ovrl"] == pytest.approx(src["dnsmos_ovrl"], abs=1e-5)
        # the TTS columns: measured prosody, bins, caption, what the labeler heard
        assert ex["f0_median_hz"] == pytest.approx(src["f0_median_hz"], rel=1e-5)
        assert ex["syllables_per_second"] == pytest.approx(src["syllables_per_second"], rel=1e-5)
        assert ex["loudness_lufs"] == pytest.approx(src["loudness_lufs"], abs=1e-4)
        assert ex["pitch_bin"] == src["pitch_bin"] and ex["caption"] == src["caption"] and ex["caption"]
        assert ex["nonverbal_events"] == [{k: pytest.approx(v) if k != "event" else v for k, v in e.items()}
                                          for e in src["nonverbal_events"]]
        _words_in_the_audio(ex["words"], src)
        assert "clip" not in ex and "clip_path" not in ex  # left out: nothing points back into the run dir
    assert "vidc" in set(ds["speaker_id"])  # no speaker_id column: the video is the speaker
    assert set(ds["caption_source"]) == {"labeler", "measured"}


def test_parler_layout_feeds_the_parler_tts_training_code_path(out_dir, rows, tmp_path):
    """The calls `training/run_parler_tts_training.py` and `training/data.py` of Parler-TTS make on
    a dataset (parler-tts 0.2.3, its README's arguments: --target_audio_column_name audio
    --prompt_column_name text --description_column_name text_description), in their order."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("torchcodec")
    run_export(out_dir, tmp_path / "parler", "parler")
    ds = datasets.load_from_disk(str(tmp_path / "parler"))
    columns_to_keep = {"target_audio_column_name": "audio", "prompt_column_name": "text",
                       "description_column_name": "text_description"}
    for key, name in columns_to_keep.items():  # the training script's check, one column per argument
        assert name in ds.column_names, f"--{key} '{name}' not found"
    # dataspeech's names and types for what it measures and bins
    f = ds.features
    assert {f[k].dtype for k in ("utterance_pitch_mean", "utterance_pitch_std", "snr", "speech_duration")} == {"float32"}
    assert {f[k].dtype for k in ("pitch", "speaking_rate", "noise", "speech_monotony", "gender")} == {"string"}
    # load_multiple_datasets: the audio resampled to the feature extractor's rate (DAC 44.1 kHz; 24 kHz Encodec)
    ds = ds.cast_column("audio", datasets.features.Audio(sampling_rate=24000))
    ds = ds.filter(lambda x: len(x) < 600, input_columns=["text_description"])  # max_text_length
    assert len(ds) == len(rows)

    def pass_through_processors(description, prompt):  # the script's own function, with a word "tokenizer"
        return {"input_ids": [len(w) for w in description.strip().split()],
                "prompt_input_ids": [len(w) for w in prompt.strip().split()]}

    vectorized = ds.map(pass_through_processors, remove_columns=ds.column_names,
                        input_columns=["text_description", "text"])
    assert all(len(ids) > 3 for ids in vectorized["input_ids"]) and all(vectorized["prompt_input_ids"])
    # DataCollatorEncodecWithPadding: feature[audio_column_name]["array"] of each example
    batch = [ds[i] for i in range(2)]
    audios = [ex["audio"].get_all_samples().data.numpy().reshape(-1) for ex in batch]
    assert all(a.size > 0 for a in audios)
    by_id = {ex["id"]: ex for ex in ds}
    for sid, src in rows.items():
        ex = by_id[sid]
        assert ex["text"] == src["text"] and ex["text_description"] == src["caption"]
        assert ex["utterance_pitch_mean"] == pytest.approx(src["f0_mean_hz"], rel=1e-5)
        assert ex["pitch"] == src["pitch_bin"] and ex["speaking_rate"] == src["speaking_rate_bin"]
        assert ex["gender"] == (src["perceived_gender"] if src["perceived_gender"] in ("male", "female") else None)


def test_loudness_normalised_copies_leave_the_run_untouched(out_dir, rows, tmp_path):
    import hashlib

    from mikupal.audio.prosody import loudness_lufs

    def digests():
        return {sid: hashlib.sha256((out_dir / r["audio_path"]).read_bytes()).hexdigest() for sid, r in rows.items()}

    before = digests()
    summary = run_export(out_dir, tmp_path / "lst", "list", "loudness=-23")
    assert summary["loudness_lufs"] == -23.0 and digests() == before
    for ln in (tmp_path / "lst" / "list.txt").read_text().splitlines():
        path = Path(ln.split("|")[0])
        assert path.is_relative_to((tmp_path / "lst" / "audio").resolve())
        audio, rate = sf.read(path, dtype="float32")
        assert loudness_lufs(audio, rate) == pytest.approx(-23.0, abs=0.3) and np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-3
    run_export(out_dir, tmp_path / "hf", "hf")  # embedded: the copies are inside the Arrow files, not beside them
    assert not (tmp_path / "hf" / "audio").exists()


def _words_in_the_audio(words, src):
    """Word times count from the exported audio's start (the segment's start in the source)."""
    assert [w["word"] for w in words] == [w["word"] for w in src["words"]] and words
    for got, w in zip(words, src["words"]):
        assert got["start"] == pytest.approx(w["start"] - src["start"], abs=1e-3)
        assert got["end"] == pytest.approx(w["end"] - src["start"], abs=1e-3)
    assert words[0]["start"] == pytest.approx(0.0, abs=1e-3) and words[-1]["end"] <= src["duration"]


def test_hf_export_stands_alone_with_its_clips(out_dir, rows, tmp_path):
    datasets = pytest.importorskip("datasets")
    import shutil

    run_export(out_dir, tmp_path / "hf", "hf", "clips=true")
    moved = shutil.copytree(tmp_path / "hf", tmp_path / "elsewhere" / "hf")
    shutil.rmtree(tmp_path / "hf")
    ds = datasets.load_from_disk(str(moved))
    for ex in ds.select_columns(["segment_id", "clip"]):
        assert ex["clip"] == (out_dir / rows[ex["segment_id"]]["clip_path"]).read_bytes()
    text_columns = [c for c, f in ds.features.items() if getattr(f, "dtype", None) == "string"]
    for c in text_columns:
        assert not any(v and ("clips/" in v or str(out_dir) in v) for v in ds[c]), c


def test_hf_split_is_a_dataset_dict_with_disjoint_speakers(out_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("torchcodec")
    summary = run_export(out_dir, tmp_path / "hf", "hf", "test_fraction=0.3", "seed=3")
    dd = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == {"train", "test"}
    person = lambda ex: ex["global_speaker_id"] or ex["speaker_id"]  # noqa: E731
    train, test = {person(ex) for ex in dd["train"]}, {person(ex) for ex in dd["test"]}
    assert train and test and not train & test
    assert summary["splits"]["test"]["speakers"] == sorted(test)


def test_lhotse_cuts_carry_text_speaker_language_and_emotions(out_dir, rows, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    run_export(out_dir, tmp_path / "lh", "lhotse")
    for name in ("recordings.jsonl.gz", "supervisions.jsonl.gz", "cuts.jsonl.gz"):
        assert (tmp_path / "lh" / name).is_file()
    cuts = lhotse.CutSet.from_file(tmp_path / "lh" / "cuts.jsonl.gz")
    assert len(cuts) == len(rows)
    for cut in cuts:
        (sup,) = cut.supervisions
        src = rows[sup.id]
        assert sup.text == src["text"] and sup.language == src["language"]
        assert sup.speaker == GLOBAL.get(src.get("speaker_id"), speaker_of(src))  # the person across videos
        assert sup.custom["speaker_id"] == speaker_of(src) and sup.custom["source"] == src["source"]
        assert sup.custom["primary_emotion"] == src["primary_emotion"] and len(sup.custom["emotions"]) == 26
        assert sup.custom["dnsmos_ovrl"] == pytest.approx(src["dnsmos_ovrl"]) and sup.custom["snr_db"] == src["snr_db"]
        assert "clip_path" not in sup.custom
        _words_in_the_audio(sup.custom["words"], src)
        assert cut.duration == pytest.approx(src["duration"], abs=1e-3)
        audio = cut.load_audio()
        assert audio.shape[-1] == pytest.approx(src["duration"] * RATE, abs=2) and np.abs(audio).max() > 0.01


def test_webdataset_shards_stream_back(out_dir, rows, tmp_path):
    wds = pytest.importorskip("webdataset")
    summary = run_export(out_dir, tmp_path / "wds", "webdataset", "shard_size=2", "clips=true")
    shards = sorted((tmp_path / "wds").glob("shard-*.tar"))
    assert len(shards) == (len(rows) + 1) // 2 and summary["files"] == [p.name for p in shards]
    seen = {}
    for sample in wds.WebDataset([str(p) for p in shards], shardshuffle=False):
        meta = json.loads(sample["json"])
        audio, rate = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
        seen[sample["__key__"]] = (meta, audio, rate)
        assert sample["mp4"] == (out_dir / rows[sample["__key__"]]["clip_path"]).read_bytes()
    assert set(seen) == set(rows)
    for sid, (meta, audio, rate) in seen.items():
        assert rate == RATE and len(audio) == pytest.approx(rows[sid]["duration"] * RATE, abs=2)
        assert meta["speaker_id"] == speaker_of(rows[sid]) and meta["text"] == rows[sid]["text"]
        assert meta["global_speaker_id"] == GLOBAL.get(rows[sid].get("speaker_id")) and "clip_path" not in meta
        assert len(meta["emotions"]) == 26 and meta["source_start"] == rows[sid]["start"]
        _words_in_the_audio(meta["words"], rows[sid])


def test_list_file_filters_and_split(out_dir, rows, tmp_path):
    run_export(out_dir, tmp_path / "all", "list")
    lines = (tmp_path / "all" / "list.txt").read_text().splitlines()
    assert len(lines) == len(rows)
    for ln in lines:
        path, speaker, text, emotion = ln.split("|")
        assert Path(path).is_file() and speaker and text and emotion
    # filters: DNSMOS, language, speakers, emotions
    summary = run_export(out_dir, tmp_path / "f", "list", "min_dnsmos=3.0", "languages=[en]")
    kept = {sid for sid, r in rows.items() if r["dnsmos_ovrl"] >= 3.0 and r["language"] == "en"}
    assert summary["splits"]["all"]["segments"] == len(kept) == len((tmp_path / "f" / "list.txt").read_text().splitlines())
    summary = run_export(out_dir, tmp_path / "c", "list", "min_avg_logprob=-0.6")
    assert summary["splits"]["all"]["segments"] == sum(r["avg_logprob"] >= -0.6 for r in rows.values()) < len(rows)
    summary = run_export(out_dir, tmp_path / "s", "list", "speakers=[vida_S1,vidc]")
    assert summary["splits"]["all"]["speakers"] == ["G1", "vidc"]
    summary = run_export(out_dir, tmp_path / "g", "list", "speakers=[G2]")  # a global id: the person in every video
    assert summary["splits"]["all"]["segments"] == sum(GLOBAL.get(r.get("speaker_id")) == "G2" for r in rows.values())
    some = sorted({r["primary_emotion"] for r in rows.values()})[:1]
    summary = run_export(out_dir, tmp_path / "e", "list", f"emotions=[{some[0]}]")
    assert summary["splits"]["all"]["segments"] == sum(r["primary_emotion"] == some[0] for r in rows.values())
    run_export(out_dir, tmp_path / "split", "list", "test_fraction=0.25")
    train = {ln.split("|")[1] for ln in (tmp_path / "split" / "train.txt").read_text().splitlines()}
    test = {ln.split("|")[1] for ln in (tmp_path / "split" / "test.txt").read_text().splitlines()}
    assert train and test and not train & test


def test_split_by_speaker_rules(rows):
    parts = split_by_speaker(list(rows.values()), 0.5, seed=0)
    assert {speaker_of(r) for r in parts["train"]}.isdisjoint({speaker_of(r) for r in parts["test"]})
    assert len(parts["train"]) + len(parts["test"]) == len(rows)


def test_no_global_speaker_is_on_both_sides_of_the_split(out_dir, rows, tmp_path):
    """vida_S2 and vidb_S1 are one person (G2): whatever the seed and share, they land together."""
    sides_seen = set()
    for seed in range(12):
        for fraction in (0.2, 0.5):
            dest = tmp_path / f"s{seed}_{fraction}"
            run_export(out_dir, dest, "list", f"test_fraction={fraction}", f"seed={seed}")
            people = {name: {ln.split("|")[1] for ln in (dest / f"{name}.txt").read_text().splitlines()}
                      for name in ("train", "test")}
            assert people["train"] and people["test"] and not people["train"] & people["test"], (seed, people)
            assert "vida_S2" not in people["train"] | people["test"]  # named by its global id
            sides_seen.add("train" if "G2" in people["train"] else "test")
    assert sides_seen == {"train", "test"}  # the seeds did move G2 around
    one = [r for r in rows.values() if speaker_of(r) == "vidb_S1"]
    with pytest.raises(UserError, match="at least 2 speakers"):
        split_by_speaker(one, 0.5, seed=0)


def test_list_lines_of_unlabeled_segments_have_no_empty_field(out_dir, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    bare = shutil.copytree(out_dir, tmp_path / "bare")
    for f in (bare / "segments").glob("*.parquet"):
        t = pq.read_table(f)
        t = t.set_column(t.schema.get_field_index("primary_emotion"), "primary_emotion", pa_nulls(t.num_rows))
        pq.write_table(t, f)
    summary = run_export(bare, tmp_path / "l", "list")
    assert summary["list_fields"] == ["audio_path", "speaker", "text"]
    for ln in (tmp_path / "l" / "list.txt").read_text().splitlines():
        assert len(ln.split("|")) == 3 and not ln.endswith("|")
    with pytest.raises(UserError, match=r"emotions=joy: no segment of .* is labeled"):
        export(ExportArgs(input=str(bare), format="list", output=str(tmp_path / "m"), emotions=["joy"]))


def pa_nulls(n):
    import pyarrow as pa

    return pa.nulls(n, pa.string())


@pytest.mark.parametrize("extra, words", [
    ("emotions=[Amusment]", "emotions: unknown value 'Amusment' (did you mean Amusement?)"),
    ("speakers=[vida_S9]", "speakers: unknown value 'vida_S9' (did you mean vida_S"),
    ("languages=[de]", "languages: unknown value 'de'"),
])
def test_filter_errors_name_the_unknown_value(out_dir, tmp_path, capsys, extra, words):
    assert main(["export", f"input={out_dir}", "format=list", f"output={tmp_path / 'x'}", extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_user_errors_are_one_line(out_dir, tmp_path, capsys):
    assert main(["export", f"input={tmp_path}", "format=list", f"output={tmp_path / 'x'}"]) == 2
    assert "not a mikupal output dir" in capsys.readouterr().err
    assert main(["export", f"input={out_dir}", "format=csv", f"output={tmp_path / 'x'}"]) == 2
    with pytest.raises(UserError, match="no segment"):
        export(ExportArgs(input=str(out_dir), format="list", output=str(tmp_path / "y"), min_dnsmos=5.0))


def test_normalising_never_clips_and_leaves_silence_alone():
    from mikupal.audio.prosody import loudness_lufs
    from mikupal.dataset.loudness import normalise

    sr = 44100
    t = np.arange(sr * 2) / sr
    quiet = (0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    quiet[sr // 2] = 0.5  # one loud click: reaching -23 LUFS would push it past full scale
    out, gain = normalise(quiet, sr, -23.0)
    assert 20 * np.log10(np.abs(out).max()) == pytest.approx(-1.0, abs=1e-3)  # held at the -1 dBFS ceiling
    assert loudness_lufs(out, sr) < -23.0 and gain == pytest.approx(20 * np.log10(10 ** (-1 / 20) / 0.5), abs=0.01)
    silent = np.zeros(sr, np.float32)
    assert normalise(silent, sr, -23.0)[1] is None
