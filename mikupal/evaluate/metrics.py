"""Single-label evaluation of predictions against benchmark gold labels.

Predictions and gold are joined on id columns; labels are compared case-insensitively. The label
set is the gold label set (or an explicit one): a prediction outside it counts as wrong and is
listed. A second block drops the items whose gold label is neutral or frustrated (the MIKU-PAL
paper's variant: the 26 categories have no counterpart for them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from mikupal.evaluate.intensities import intensity_frame
from mikupal.taxonomy import Taxonomy, TaxonomyError

EXCLUDED_LABELS = ("neutral", "frustrated", "frustration", "neu", "fru")
INVALID = "(invalid)"
PRED, GOLD = "_pred", "_gold"


def id_strings(series: pd.Series) -> pd.Series:
    """Ids as strings so that 7, 7.0 and "7" join; missing ids stay missing."""
    if pd.api.types.is_float_dtype(series) and series.dropna().apply(float.is_integer).all():
        series = series.astype("Int64")
    return series.astype("string").str.strip()


def _labels(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().str.lower()


def join(
    predictions: pd.DataFrame,
    gold: pd.DataFrame,
    id_columns: Sequence[str],
    pred_column: str,
    gold_column: str,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Inner join on `id_columns` -> (ids + `_pred` + `_gold`, counts of what did not match)."""
    ids = list(id_columns)
    if not ids:
        raise ValueError("no id columns to join predictions and gold on")
    for name, df, col in (("predictions", predictions, pred_column), ("gold", gold, gold_column)):
        missing = [c for c in [*ids, col] if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing columns {missing} (has: {list(df.columns)})")
    sides = []
    for name, df, col, out in (("predictions", predictions, pred_column, PRED), ("gold", gold, gold_column, GOLD)):
        side = pd.DataFrame({c: id_strings(df[c]) for c in ids})
        side[out] = _labels(df[col])
        dupes = side.duplicated(ids, keep=False)
        if dupes.any():
            first = side.loc[dupes, ids].iloc[0].to_dict()
            raise ValueError(f"{name}: {int(dupes.sum())} rows share ids with another row, e.g. {first}")
        sides.append(side)
    gold_side = sides[1].dropna(subset=[GOLD])
    joined = gold_side.merge(sides[0], on=ids, how="inner", validate="one_to_one")
    counts = {
        "n_gold": len(gold_side),
        "n_predictions": len(sides[0]),
        "missing_predictions": len(gold_side) - len(joined),
        "unmatched_predictions": len(sides[0]) - len(joined),
    }
    return joined.reset_index(drop=True), counts


def _finite(x: float) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def classification_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """n, accuracy, weighted/macro F1 over `labels`, per-class precision/recall/f1/support.

    A prediction outside `labels` is never a true positive, so it lowers accuracy and the recall of
    the item's gold class without counting as a false positive of any class.
    """
    gold, pred, labels = list(gold), ["" if p is None or p is pd.NA else p for p in pred], list(labels)
    if not gold:
        return {"n": 0, "accuracy": None, "weighted_f1": None, "macro_f1": None, "per_class": {}}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": _finite(accuracy_score(gold, pred)),
        "weighted_f1": _finite(f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": _finite(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)
        },
    }


def evaluate(
    predictions: pd.DataFrame,
    gold: pd.DataFrame,
    id_columns: Sequence[str],
    pred_column: str,
    gold_column: str,
    labels: Optional[Iterable[str]] = None,
    exclude: Iterable[str] = EXCLUDED_LABELS,
    output_dir: Optional[str | Path] = None,
) -> dict[str, Any]:
    """Metrics of `predictions` against `gold`; writes confusion_matrix.png into `output_dir` if given."""
    joined, counts = join(predictions, gold, id_columns, pred_column, gold_column)
    gold_labels = sorted(joined[GOLD].unique())
    if labels is None:
        label_set = gold_labels
    else:
        label_set = list(dict.fromkeys(str(x).strip().lower() for x in labels))
        outside = sorted(set(gold_labels) - set(label_set))
        if outside:
            raise ValueError(f"gold labels {outside} are not in the label set {label_set}")
    y_true = joined[GOLD].tolist()
    y_pred = joined[PRED].fillna("").tolist()
    invalid = ~joined[PRED].fillna("").isin(label_set)
    result: dict[str, Any] = {**classification_metrics(y_true, y_pred, label_set), **counts}
    result["labels"] = label_set
    result["invalid_predictions"] = [
        {**{c: row[c] for c in id_columns}, "prediction": None if pd.isna(row[PRED]) else row[PRED]}
        for _, row in joined.loc[invalid].iterrows()
    ]
    dropped = {str(x).strip().lower() for x in exclude}
    keep = ~joined[GOLD].isin(dropped)
    kept_labels = [x for x in label_set if x not in dropped]
    result["excluding_neutral_frustration"] = {
        **classification_metrics(joined.loc[keep, GOLD].tolist(), joined.loc[keep, PRED].fillna("").tolist(), kept_labels),
        "labels": kept_labels,
        "excluded_labels": [x for x in label_set if x in dropped],
        "dropped_items": int((~keep).sum()),
    }
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(y_true, y_pred, label_set, out / "confusion_matrix.png", accuracy=result["accuracy"])
    return result


def plot_confusion(
    gold: Sequence[str],
    pred: Sequence[str],
    labels: Sequence[str],
    path: str | Path,
    accuracy: Optional[float] = None,
) -> Path:
    """Gold in rows, predictions in columns (plus one column for predictions outside `labels`);
    cells coloured by row share and annotated with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels)
    pred = [p if p in labels else INVALID for p in pred]
    columns = labels + ([INVALID] if INVALID in pred else [])
    matrix = confusion_matrix(list(gold), pred, labels=columns)[: len(labels)]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(columns) + 2.0)
    fig, ax = plt.subplots(figsize=(size, max(3.5, 0.6 * len(labels) + 1.5)))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    title = f"n={len(gold)}" + (f", accuracy={accuracy:.3f}" if accuracy is not None else "")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of gold row")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def map_predictions(
    predictions: pd.DataFrame,
    pred_column: str,
    taxonomy: Taxonomy,
    target: str,
    use_intensities: bool = True,
    intensity_column: Optional[str] = None,
) -> pd.Series:
    """Predicted categories of `taxonomy` as labels of `target` (e.g. cowen_keltner_26 -> meld).

    With intensities (an `emotions` column or `emotion_<name>` columns) the summed intensity per
    target label decides; otherwise the primary label is mapped. A label the taxonomy does not know
    is kept as is, so it is scored as an invalid prediction.
    """
    if target not in taxonomy.mappings:
        raise ValueError(f"taxonomy {taxonomy.name!r} has no mapping to {target!r} (has: {sorted(taxonomy.mappings)})")

    def one(label: Any) -> Any:
        if label is None or (isinstance(label, float) and math.isnan(label)):
            return None
        try:
            return taxonomy.map_label(str(label), target)
        except TaxonomyError:
            return label

    mapped = (
        pd.Series([one(x) for x in predictions[pred_column]], index=predictions.index, dtype=object)
        if pred_column in predictions.columns
        else None
    )
    frame = intensity_frame(predictions, intensity_column) if use_intensities else None
    if frame is None:
        if mapped is None:
            raise ValueError(f"predictions: no column {pred_column!r} and no intensities to map")
        return mapped
    known = [c for c in frame.columns if c.casefold() in {n.casefold() for n in taxonomy.names()}]
    out = []
    for i, row in enumerate(frame[known].itertuples(index=False, name=None)):
        weights = {k: v for k, v in zip(known, row) if v > 0}
        out.append(taxonomy.map_intensities(weights, target) if weights else (None if mapped is None else mapped.iloc[i]))
    return pd.Series(out, index=predictions.index, dtype=object)
