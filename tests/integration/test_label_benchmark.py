"""`mikupal evaluate dataset=... clips=DIR labeler=...`: label a benchmark's own clips through the
real google-genai SDK against the fake Gemini server, then score; plus the console entry point
scoring an external predictions file the way a new user would."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mikupal.errors import UserError  # noqa: E402
from mikupal.commands.evaluate import evaluate_command  # noqa: E402
from tests.fakes import FakeGemini  # noqa: E402

MELD_DIR = ROOT.parent / "shared" / "data" / "meld"
MELD_TEST = MELD_DIR / "test_sent_emo.csv"
FACE = ROOT.parent / "shared" / "media" / "vr_face1.mp4"
pytestmark = pytest.mark.skipif(not (MELD_TEST.is_file() and FACE.is_file()), reason="shared MELD CSVs/media absent")

KEY = "gm-bench-KEY-0101"
MELD_LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
N_ITEMS = 6
MISSING = 3  # the 4th item of the split has no clip


@pytest.fixture(scope="module")
def gold():
    # read independently of the adapter under test; file order
    df = pd.read_csv(MELD_TEST)
    return df.rename(columns={"Dialogue_ID": "dialogue_id", "Utterance_ID": "utterance_id", "Emotion": "emotion"})


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 1-second H.264/AAC clip cut out of a shared face video with PyAV."""
    from mikupal.media import decode_audio, decode_video, write_clip

    path = tmp_path_factory.mktemp("src") / "face.mp4"
    frames = decode_video(FACE, 0.0, 1.0, fps=10.0, width=160).frames
    write_clip(path, frames, 10.0, decode_audio(FACE, 0.0, 1.0, 16000), 16000)
    return path


@pytest.fixture()
def clips(tmp_path, gold, clip):
    d = tmp_path / "clips"
    d.mkdir()
    for i, row in gold.head(N_ITEMS).iterrows():
        if i != MISSING:
            shutil.copy(clip, d / f"dia{row.dialogue_id}_utt{row.utterance_id}.mp4")
    return d


@pytest.fixture()
def fake(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with FakeGemini(api_key=KEY) as srv:
        yield srv


def _run(capsys, *overrides) -> dict:
    assert evaluate_command(list(overrides)) == 0
    return json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout


def _user_parts(body) -> list[dict]:
    [turn] = body["contents"]
    return turn["parts"]


def _inline(part) -> dict:
    return part.get("inlineData") or part.get("inline_data")


def test_label_meld_clips_then_score_and_resume(fake, clips, gold, tmp_path, capsys):
    out = tmp_path / "run1"
    base = ["dataset=meld", "split=test", f"meld_dir={MELD_DIR}", f"clips={clips}", "labeler=gemini",
            f"labeler.base_url={fake.url}", "labeler.backoff_base_s=0.01", f"limit={N_ITEMS}"]  # fmt: skip
    result = _run(capsys, *base, f"output={out}")

    # the request: the MELD closed label set in the system prompt and the schema, the clip, the utterance
    assert len(fake.requests) == N_ITEMS - 1
    body = next(b for b in fake.requests if "Why do all you're coffee mugs" in _user_parts(b)[-1]["text"])
    system = body["systemInstruction"]["parts"][0]["text"]
    for label in MELD_LABELS:
        assert f"**{label}**" in system
    assert "Choose exactly one of the following 7 labels" in system
    schema = body["generationConfig"]["responseJsonSchema"]
    assert sorted(schema["properties"]["primary_emotion"]["enum"]) == MELD_LABELS
    media_part, text_part = _user_parts(body)
    assert _inline(media_part).get("mimeType", _inline(media_part).get("mime_type")) == "video/mp4"
    assert base64.urlsafe_b64decode(_inline(media_part)["data"]) == (clips / "dia0_utt0.mp4").read_bytes()

    # predictions.parquet: ids, a MELD label per clip, the missing clip recorded with its reason
    preds = pd.read_parquet(out / "predictions.parquet")
    first = gold.head(N_ITEMS)
    assert list(preds.segment_id) == [f"dia{d}_utt{u}" for d, u in zip(first.dialogue_id, first.utterance_id)]
    missing = gold.iloc[MISSING]
    lost = preds[preds.prediction.isna()]
    assert list(lost.segment_id) == [f"dia{missing.dialogue_id}_utt{missing.utterance_id}"]
    assert list(lost.reason) == ["missing_clip"]
    labeled = preds[preds.prediction.notna()]
    assert set(labeled.prediction) <= set(MELD_LABELS) and len(labeled) == N_ITEMS - 1
    assert (labeled.cost_usd > 0).all() and (labeled.input_tokens > 0).all()

    # the metrics: over the labeled items, checked against an independent computation
    joined = labeled.merge(gold, on=["dialogue_id", "utterance_id"])
    assert result["n"] == N_ITEMS - 1 == result["labeling"]["labeled"]
    assert result["accuracy"] == pytest.approx(float((joined.prediction == joined.emotion).mean()))
    assert result["n_missing_clips"] == 1 and result["missing_predictions"] == 1
    assert result["labels"] == MELD_LABELS and result["invalid_predictions"] == []
    assert result["cost_usd"] == pytest.approx(labeled.cost_usd.sum()) and result["cost_usd"] > 0
    assert result["labeling"]["requests_this_run"] == N_ITEMS - 1
    assert result["inputs"]["predictions"] == str(out / "predictions.parquet")
    assert json.loads((out / "metrics.json").read_text()) == result
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"

    # re-run: nothing is sent again, same scores
    again = _run(capsys, *base, f"output={out}")
    assert len(fake.requests) == N_ITEMS - 1
    assert again["accuracy"] == result["accuracy"] and again["n"] == result["n"]
    assert again["labeling"]["skipped_already_labeled"] == N_ITEMS - 1
    assert again["labeling"]["requests_this_run"] == 0 and again["cost_usd"] == result["cost_usd"]

    # the clip turns up: only that item is labeled on the next run
    shutil.copy(clips / "dia0_utt0.mp4", clips / f"dia{missing.dialogue_id}_utt{missing.utterance_id}.mp4")
    third = _run(capsys, *base, f"output={out}")
    assert len(fake.requests) == N_ITEMS
    assert third["n"] == N_ITEMS and third["n_missing_clips"] == 0 and third["missing_predictions"] == 0

    # another model into the same folder would mix two runs: refused
    with pytest.raises(UserError, match="another run"):
        evaluate_command([*base, "labeler.model=gemini-2.5-pro", f"output={out}"])
    assert len(fake.requests) == N_ITEMS


def test_text_mode_sends_the_dialogue_context(fake, tmp_path, capsys):
    out = tmp_path / "text"
    result = _run(capsys, "gold=meld:test", f"meld_dir={MELD_DIR}", "labeler=gemini", f"labeler.base_url={fake.url}",
                  "labeler.mode=text", "limit=3", f"output={out}")  # fmt: skip
    assert result["n"] == 3 and result["n_missing_clips"] == 0
    assert len(fake.requests) == 3
    texts = [_user_parts(b)[-1]["text"] for b in fake.requests]
    assert all(len(_user_parts(b)) == 1 for b in fake.requests)  # no media in text mode
    third = next(t for t in texts if "Y'know what?" in t)
    assert "<context>" in third and "Mark: Why do all you're coffee mugs" in third and "Rachel: Oh." in third
    first = next(t for t in texts if "coffee mugs" in t and "<context>" not in t)
    assert "<target_utterance>" in first


def test_audio_mode_sends_the_clip_sound_track(fake, clips, tmp_path, capsys):
    out = tmp_path / "audio"
    result = _run(capsys, "dataset=meld", f"meld_dir={MELD_DIR}", f"clips={clips}", "labeler=gemini",
                  f"labeler.base_url={fake.url}", "labeler.mode=audio", "limit=2", f"output={out}")  # fmt: skip
    assert result["n"] == 2 and len(fake.requests) == 2
    for body in fake.requests:
        media_part = _user_parts(body)[0]
        assert _inline(media_part).get("mimeType", _inline(media_part).get("mime_type")) == "audio/flac"
    assert sorted(p.name for p in (out / "media" / "audio").iterdir()) == ["dia0_utt0.flac", "dia0_utt1.flac"]


def test_wrong_key_is_one_clear_error(clips, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "not-the-key")
    with FakeGemini(api_key=KEY) as fake:
        with pytest.raises(UserError, match="rejected the API key") as e:  # the preflight, before any request
            evaluate_command(["dataset=meld", f"meld_dir={MELD_DIR}", f"clips={clips}", f"labeler.base_url={fake.url}",
                              "limit=3", f"output={tmp_path / 'bad'}"])  # fmt: skip
        assert not fake.requests and "not-the-key" not in str(e.value)
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(UserError, match="GEMINI_API_KEY"):
        evaluate_command(["dataset=meld", f"meld_dir={MELD_DIR}", f"clips={clips}", "limit=3",
                          f"output={tmp_path / 'b2'}"])  # fmt: skip
    with pytest.raises(UserError, match="needs the MELD clips"):
        evaluate_command(["dataset=meld", f"meld_dir={MELD_DIR}", "labeler=gemini", f"output={tmp_path / 'b3'}"])
    with pytest.raises(UserError, match="not both"):
        evaluate_command(["predictions=x.csv", "dataset=meld", f"meld_dir={MELD_DIR}", f"clips={clips}"])


# ---------------------------------------------------------------- IEMOCAP layout and any table

EVAL = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[0.2000 - 1.2000]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]

[1.5000 - 2.5000]\tSes01F_impro01_M000\tang\t[2.0000, 3.5000, 3.5000]

[2.6000 - 2.9000]\tSes01F_impro01_F001\txxx\t[2.5000, 3.0000, 3.0000]
"""
TRANSCRIPT = """Ses01F_impro01_F000 [000.2000-001.2000]: Excuse me.
Ses01F_impro01_M000 [001.5000-002.5000]: Do you have your forms?
"""


@pytest.fixture()
def iemocap_root(tmp_path):
    import av
    import soundfile as sf

    s = tmp_path / "IEMOCAP" / "Session1"
    (s / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (s / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(EVAL)
    (s / "dialog" / "transcriptions").mkdir(parents=True)
    (s / "dialog" / "transcriptions" / "Ses01F_impro01.txt").write_text(TRANSCRIPT)
    wavs = s / "sentences" / "wav" / "Ses01F_impro01"
    wavs.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for utt in ("Ses01F_impro01_F000", "Ses01F_impro01_M000"):
        sf.write(wavs / f"{utt}.wav", (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    avi = s / "dialog" / "avi" / "DivX" / "Ses01F_impro01.avi"
    avi.parent.mkdir(parents=True)
    with av.open(str(avi), "w", format="avi") as c:  # the whole dialogue: 3 s, MPEG-4 part 2 like the release
        st = c.add_stream("mpeg4", rate=10)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    return tmp_path / "IEMOCAP"


def test_iemocap_audio_and_video_from_the_release_layout(fake, iemocap_root, tmp_path, capsys):
    common = ["dataset=iemocap", "split=1", f"iemocap_dir={iemocap_root}", "labeler=gemini",
              f"labeler.base_url={fake.url}"]  # fmt: skip
    audio = _run(capsys, *common, "labeler.mode=audio", f"output={tmp_path / 'a'}")
    assert audio["n"] == 2 and audio["n_missing_clips"] == 0  # the xxx turn has no gold label: not an item
    sent = [base64.urlsafe_b64decode(_inline(_user_parts(b)[0])["data"]) for b in fake.requests]
    wavs = sorted(iemocap_root.rglob("*.wav"))
    assert sorted(sent) == sorted(w.read_bytes() for w in wavs)  # the utterance wavs, as they are
    system = fake.requests[0]["systemInstruction"]["parts"][0]["text"]
    assert "**frustrated**" in system and "**excited**" in system
    preds = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    assert list(preds.utterance_id) == ["Ses01F_impro01_F000", "Ses01F_impro01_M000"]

    video = _run(capsys, *common, "labeler.mode=video", f"output={tmp_path / 'v'}")
    assert video["n"] == 2 and len(fake.requests) == 4
    cut = sorted((tmp_path / "v" / "media" / "video").iterdir())
    assert [p.name for p in cut] == ["Ses01F_impro01_F000.mp4", "Ses01F_impro01_M000.mp4"]
    from mikupal.media import duration_seconds as media_duration

    assert media_duration(cut[0]) == pytest.approx(1.0, abs=0.15)  # [0.2, 1.2] of the dialogue


def test_any_table_with_clips(fake, clips, tmp_path, capsys):
    items = pd.DataFrame({"item": ["a", "b", "c"], "label": ["happy", "sad", "happy"], "text": ["yay", "oh no", "hi"],
                          "clip": ["dia0_utt0.mp4", "dia0_utt1.mp4", "nope.mp4"]})  # fmt: skip
    path = tmp_path / "items.csv"
    items.to_csv(path, index=False)
    result = _run(capsys, f"gold={path}", "id_columns=[item]", "gold_column=label", f"clips={clips}",
                  "labels=[happy,sad,angry]", "labeler=gemini", f"labeler.base_url={fake.url}",
                  f"output={tmp_path / 't'}")  # fmt: skip
    assert result["n"] == 2 and result["n_missing_clips"] == 1 and result["labels"] == ["happy", "sad", "angry"]
    enum = fake.requests[0]["generationConfig"]["responseJsonSchema"]["properties"]["primary_emotion"]["enum"]
    assert enum == ["happy", "sad", "angry"]
    preds = pd.read_parquet(tmp_path / "t" / "predictions.parquet")
    assert set(preds.prediction.dropna()) <= {"happy", "sad", "angry"}


# ---------------------------------------------------------------- the console entry point, as a new user


def test_console_entry_point_scores_an_external_predictions_csv(gold, tmp_path):
    rng = np.random.default_rng(3)
    pred = np.where(rng.random(len(gold)) < 0.5, gold.emotion, rng.choice(MELD_LABELS, len(gold)))
    path = tmp_path / "my_predictions.csv"
    table = pd.DataFrame({"dialogue_id": gold.dialogue_id, "utterance_id": gold.utterance_id, "label": pred})
    table.to_csv(path, index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("MIKUPAL_MELD_DIR", "GEMINI_API_KEY")}
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, "-m", "mikupal.cli", "evaluate", f"predictions={path}", "gold=meld:test",
         f"meld_dir={MELD_DIR}", "pred_column=label", "id_columns=[dialogue_id,utterance_id]", f"output={out}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == len(gold) == 2610
    assert result["accuracy"] == pytest.approx(float((pred == gold.emotion).mean()))
    assert json.loads((out / "metrics.json").read_text()) == result

    # a labeling run without a key: one line on stderr, exit 2, no traceback
    clips = tmp_path / "clips"
    clips.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "mikupal.cli", "evaluate", "dataset=meld", "split=test", f"meld_dir={MELD_DIR}",
         f"clips={clips}", "labeler=gemini", "limit=2", f"output={tmp_path / 'x'}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and "no item of meld:test could be labeled" in proc.stderr
