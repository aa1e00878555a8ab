"""`mikupal evaluate` / `agreement` on the shared MELD test split with external prediction files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from mikupal.errors import UserError
from mikupal.commands.agreement import agreement_command
from mikupal.commands.evaluate import evaluate_command
from mikupal.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[2]
MELD_DIR = ROOT.parent / "shared" / "data" / "meld"
MELD_TEST = MELD_DIR / "test_sent_emo.csv"
pytestmark = pytest.mark.skipif(not MELD_TEST.is_file(), reason="shared MELD CSVs absent")


@pytest.fixture(scope="module")
def gold():
    # read independently of the adapter under test
    return pd.read_csv(MELD_TEST)[["Dialogue_ID", "Utterance_ID", "Emotion"]]


@pytest.fixture(scope="module")
def predictions(gold, tmp_path_factory):
    rng = np.random.default_rng(11)
    labels = sorted(gold.Emotion.unique())
    pred = np.where(rng.random(len(gold)) < 0.6, gold.Emotion, rng.choice(labels, len(gold))).astype(object)
    pred[:4] = "Awe"  # not a MELD label: wrong, and listed
    df = pd.DataFrame({"dialogue_id": gold.Dialogue_ID, "utterance_id": gold.Utterance_ID, "label": pred})
    path = tmp_path_factory.mktemp("preds") / "predictions.csv"
    df.to_csv(path, index=False)
    return path, df


def _expected(gold, pred_df):
    y = gold.Emotion.tolist()
    p = pred_df.label.str.lower().tolist()
    labels = sorted(set(y))
    return {
        "accuracy": accuracy_score(y, p),
        "weighted_f1": f1_score(y, p, labels=labels, average="weighted"),
        "macro_f1": f1_score(y, p, labels=labels, average="macro"),
    }


def _check(result, gold, pred_df):
    expected = _expected(gold, pred_df)
    assert result["n"] == len(gold) == 2610
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert len(result["invalid_predictions"]) == 4
    assert {x["prediction"] for x in result["invalid_predictions"]} == {"awe"}
    block = result["excluding_neutral_frustration"]
    assert block["n"] == int((gold.Emotion != "neutral").sum()) and "neutral" not in block["per_class"]
    assert set(result["per_class"]) == set(gold.Emotion)


def test_evaluate_command_direct(gold, predictions, tmp_path, capsys):
    path, df = predictions
    out = tmp_path / "eval"
    rc = evaluate_command(
        [f"predictions={path}", "gold=meld:test", f"meld_dir={MELD_DIR}", "pred_column=label",
         "gold_column=emotion", "id_columns=[dialogue_id,utterance_id]", f"output={out}"]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    _check(result, gold, df)
    assert json.loads((out / "metrics.json").read_text()) == result
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"

    # the same gold named as dataset=meld split=test, ids and gold column by default
    assert evaluate_command([f"predictions={path}", "dataset=meld", "split=test", f"meld_dir={MELD_DIR}", "pred_column=label"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["accuracy"] == result["accuracy"]


def test_evaluate_command_via_subprocess(gold, predictions, tmp_path):
    path, df = predictions
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIKUPAL_MELD_DIR": str(MELD_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "mikupal.cli", "evaluate", f"predictions={path}", "gold=meld:test",
         "pred_column=label", "id_columns=[dialogue_id,utterance_id]", f"output={tmp_path}"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _check(json.loads(proc.stdout), gold, df)
    assert (tmp_path / "confusion_matrix.png").is_file()


def test_predictions_in_the_26_categories_are_mapped(gold, tmp_path, capsys):
    # a perfect labeler answering in Cowen & Keltner categories
    tax = load_taxonomy("cowen_keltner_26")
    inverse = {"anger": "Anger", "disgust": "Disgust", "fear": "Horror", "joy": "Amusement",
               "neutral": "Calmness", "sadness": "Nostalgia", "surprise": "Awe"}  # fmt: skip
    assert all(tax.map_label(v, "meld") == k for k, v in inverse.items())
    rows = pd.DataFrame(
        {"dialogue_id": gold.Dialogue_ID, "utterance_id": gold.Utterance_ID, "primary_emotion": gold.Emotion.map(inverse)}
    )
    path = tmp_path / "segments.parquet"
    rows.to_parquet(path)
    assert evaluate_command([f"predictions={path}", "gold=meld:test", f"meld_dir={MELD_DIR}", "map_from=cowen_keltner_26"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 1.0 and result["macro_f1"] == 1.0 and result["invalid_predictions"] == []


def test_gold_from_any_table(gold, predictions, tmp_path, capsys):
    path, df = predictions
    table = tmp_path / "gold.parquet"
    gold.rename(columns={"Dialogue_ID": "dialogue_id", "Utterance_ID": "utterance_id"}).to_parquet(table)
    base = [f"predictions={path}", f"gold={table}", "pred_column=label", "id_columns=[dialogue_id,utterance_id]"]
    assert evaluate_command([*base, "gold_column=Emotion"]) == 0
    _check(json.loads(capsys.readouterr().out), gold, df)
    with pytest.raises(UserError, match="missing gold_column=NAME"):
        evaluate_command(base)


def test_user_errors(predictions, tmp_path, monkeypatch):
    path, _ = predictions
    monkeypatch.delenv("MIKUPAL_MELD_DIR", raising=False)
    with pytest.raises(UserError, match="meld_dir=PATH"):
        evaluate_command([f"predictions={path}", "gold=meld:test"])
    with pytest.raises(UserError, match="unknown key 'predictons'"):
        evaluate_command([f"predictons={path}", "gold=meld:test"])
    with pytest.raises(UserError, match="expected key=value"):
        evaluate_command([str(path)])
    with pytest.raises(UserError, match=r"missing columns \['emotion_label'\]"):
        evaluate_command([f"predictions={path}", "gold=meld:test", f"meld_dir={MELD_DIR}", "pred_column=emotion_label"])
    with pytest.raises(UserError, match="unknown MELD split"):
        evaluate_command([f"predictions={path}", "gold=meld:holdout", f"meld_dir={MELD_DIR}", "pred_column=label"])


def test_agreement_command_on_run_dirs(predictions, tmp_path, capsys):
    _, df = predictions
    df = df.assign(segment_id=[f"dia{d}_utt{u}" for d, u in zip(df.dialogue_id, df.utterance_id)])
    runs = []
    for i in range(3):
        seg = tmp_path / f"run{i}" / "segments"
        seg.mkdir(parents=True)
        df.rename(columns={"label": "primary_emotion"}).to_parquet(seg / "part-0.parquet")
        runs.append(str(seg.parent))
    assert agreement_command([f"runs=[{','.join(runs)}]", f"output={tmp_path / 'agreement'}"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == ["run0", "run1", "run2"] and result["n_items"] == len(df)
    assert result["fleiss_kappa"] == pytest.approx(1.0)
    assert all(p["kappa"] == pytest.approx(1.0) for p in result["pairwise_cohen"])
    assert result["mean_intensity_correlation"] is None
    assert set(result["per_category"]) == set(df.label.str.strip())
    assert json.loads((tmp_path / "agreement" / "agreement.json").read_text()) == result
    with pytest.raises(UserError, match="at least 2 runs"):
        agreement_command([f"runs=[{runs[0]}]"])
