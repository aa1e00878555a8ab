import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from mikupal.evaluate.datasets.table import read_table
from mikupal.evaluate.metrics import evaluate, map_predictions
from mikupal.taxonomy import load_taxonomy

LABELS = ["anger", "joy", "neutral", "sadness", "surprise"]


@pytest.fixture
def pair():
    rng = np.random.default_rng(7)
    n = 300
    gold = pd.DataFrame(
        {"dia": np.arange(n) // 10, "utt": np.arange(n) % 10, "emotion": rng.choice(LABELS, n, p=[0.15, 0.2, 0.4, 0.1, 0.15])}
    )
    pred = gold.copy()
    flip = rng.random(n) < 0.45
    pred.loc[flip, "emotion"] = rng.choice(LABELS, flip.sum())
    pred = pred.rename(columns={"emotion": "label"}).sample(frac=1.0, random_state=1)  # row order differs
    pred["dia"] = pred["dia"].astype(str)  # ids as strings on one side must still join
    pred["label"] = pred["label"].str.upper()  # and labels compare case-insensitively
    return gold, pred


def _expected(gold, pred, labels):
    merged = gold.merge(pred.assign(dia=pred.dia.astype(int)), on=["dia", "utt"])
    y, p = merged.emotion.tolist(), merged.label.str.lower().tolist()
    return y, p


def test_accuracy_and_f1_agree_with_sklearn(pair, tmp_path):
    gold, pred = pair
    result = evaluate(pred, gold, ["dia", "utt"], "label", "emotion", output_dir=tmp_path)
    y, p = _expected(gold, pred, LABELS)
    assert result["n"] == len(gold) and result["labels"] == LABELS
    assert result["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert result["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted"))
    assert result["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=LABELS)
    for i, label in enumerate(LABELS):
        assert result["per_class"][label] == pytest.approx(
            {"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": support[i]}
        )
    assert result["invalid_predictions"] == []
    png = tmp_path / "confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invalid_and_missing_predictions(pair):
    gold, pred = pair
    pred = pred.copy()
    pred.iloc[:7, pred.columns.get_loc("label")] = "Awe"
    pred.iloc[7, pred.columns.get_loc("label")] = None
    pred = pred.iloc[:-5]  # five gold items get no prediction
    result = evaluate(pred, gold, ["dia", "utt"], "label", "emotion")
    y, p = _expected(gold, pred.fillna({"label": ""}), LABELS)
    assert result["n"] == len(gold) - 5 and result["missing_predictions"] == 5
    assert result["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert result["macro_f1"] == pytest.approx(f1_score(y, p, labels=LABELS, average="macro"))
    invalid = result["invalid_predictions"]
    assert len(invalid) == 8
    assert sorted(x["prediction"] for x in invalid if x["prediction"]) == ["awe"] * 7
    assert set(invalid[0]) == {"dia", "utt", "prediction"}
    # an invalid prediction is wrong: recall of its gold class drops, no class gains a false positive
    assert result["accuracy"] < evaluate(pair[1], gold, ["dia", "utt"], "label", "emotion")["accuracy"] + 1e-9


def test_block_excluding_neutral_and_frustration(pair):
    gold, pred = pair
    result = evaluate(pred, gold, ["dia", "utt"], "label", "emotion")
    block = result["excluding_neutral_frustration"]
    y, p = _expected(gold, pred, LABELS)
    keep = [i for i, g in enumerate(y) if g != "neutral"]
    ky, kp = [y[i] for i in keep], [p[i] for i in keep]
    kept = [x for x in LABELS if x != "neutral"]
    assert block["n"] == len(keep) and block["dropped_items"] == len(y) - len(keep)
    assert block["labels"] == kept and block["excluded_labels"] == ["neutral"]
    assert block["accuracy"] == pytest.approx(accuracy_score(ky, kp))
    assert block["macro_f1"] == pytest.approx(f1_score(ky, kp, labels=kept, average="macro", zero_division=0))
    assert block["weighted_f1"] == pytest.approx(f1_score(ky, kp, labels=kept, average="weighted", zero_division=0))


def test_join_errors(pair):
    gold, pred = pair
    with pytest.raises(ValueError, match="predictions: 2 rows share ids"):
        evaluate(pd.concat([pred, pred.iloc[:1]]), gold, ["dia", "utt"], "label", "emotion")
    with pytest.raises(ValueError, match=r"gold: missing columns \['scene'\]"):
        evaluate(pred.assign(scene=1), gold, ["dia", "utt", "scene"], "label", "emotion")
    with pytest.raises(ValueError, match="not in the label set"):
        evaluate(pred, gold, ["dia", "utt"], "label", "emotion", labels=["joy"])


def test_map_predictions_from_the_26_categories():
    tax = load_taxonomy("cowen_keltner_26")
    preds = pd.DataFrame(
        {
            "primary_emotion": ["Anger", "Calmness", "Jealousy", None],
            "emotions": [
                [{"name": "Anger", "intensity": 0.5}, {"name": "Joy", "intensity": 0.3}, {"name": "Amusement", "intensity": 0.3}],
                [],
                [],
                [{"name": "Horror", "intensity": 0.9}],
            ],
        }
    )
    assert map_predictions(preds, "primary_emotion", tax, "meld").tolist() == ["joy", "neutral", "Jealousy", "fear"]
    assert map_predictions(preds, "primary_emotion", tax, "meld", use_intensities=False).tolist() == [
        "anger", "neutral", "Jealousy", None,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no mapping to 'goemotions'"):
        map_predictions(preds, "primary_emotion", tax, "goemotions")


def test_read_table_formats(tmp_path):
    df = pd.DataFrame({"segment_id": ["a", "b"], "primary_emotion": ["Joy", "Awe"]})
    df.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "run" / "segments").mkdir(parents=True)
    df.to_parquet(tmp_path / "run" / "segments" / "part-0.parquet")
    for path in (tmp_path / "p.csv", tmp_path / "run", tmp_path / "run" / "segments"):
        assert read_table(path, ["segment_id"], "primary_emotion").to_dict("list") == df.to_dict("list")
    with pytest.raises(ValueError, match=r"missing columns \['label'\]"):
        read_table(tmp_path / "p.csv", ["segment_id"], "label")
    with pytest.raises(ValueError, match="unknown table format"):
        (tmp_path / "p.xlsx").write_text("x")
        read_table(tmp_path / "p.xlsx", ["segment_id"])
