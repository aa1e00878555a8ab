"""Agreement between N repeated labeling runs over the same items.

- Fleiss' kappa over the primary labels (each run is one rater), overall and per category
  (binary one-vs-rest Fleiss' kappa);
- Cohen's kappa for every pair of runs;
- for mixed labels, the Pearson correlation of two runs' intensity vectors of an item, averaged over
  run pairs, then over items.

Undefined statistics (e.g. every rater always choosing the same single category) are None.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from mikupal.evaluate.intensities import intensity_frame
from mikupal.evaluate.metrics import id_strings


def _none_if_nan(x: float) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def fleiss(labels: np.ndarray) -> Optional[float]:
    """Fleiss' kappa of an items x raters matrix of category labels (any hashable values)."""
    labels = np.asarray(labels, dtype=object)
    if labels.ndim != 2 or labels.shape[0] == 0 or labels.shape[1] < 2:
        raise ValueError(f"need an items x raters matrix with >= 2 raters, got shape {labels.shape}")
    _, codes = np.unique(labels.astype(str), return_inverse=True)
    table, _ = aggregate_raters(codes.reshape(labels.shape))
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _none_if_nan(fleiss_kappa(table, method="fleiss"))


def per_category_fleiss(labels: np.ndarray, categories: Optional[Sequence[str]] = None) -> dict[str, Optional[float]]:
    """One-vs-rest Fleiss' kappa per category: how consistently the runs pick (or avoid) it."""
    labels = np.asarray(labels, dtype=object)
    if categories is None:
        categories = sorted({str(x) for x in labels.ravel()})
    return {c: fleiss(labels.astype(str) == c) for c in categories}


def pairwise_cohen(labels: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    labels = np.asarray(labels, dtype=object).astype(str)
    out = []
    for a, b in itertools.combinations(range(labels.shape[1]), 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kappa = cohen_kappa_score(labels[:, a], labels[:, b])
        out.append({"run_a": names[a], "run_b": names[b], "kappa": _none_if_nan(kappa)})
    return out


def mean_intensity_correlation(vectors: Sequence[np.ndarray]) -> tuple[Optional[float], int]:
    """Per item, the mean Pearson r of its intensity vectors over run pairs; then the mean over items.

    `vectors`: one items x categories array per run, same rows and columns. Pairs where a vector is
    constant (r undefined) are skipped. Returns (mean, number of items with a defined value).
    """
    per_pair = []
    centered = [v - v.mean(axis=1, keepdims=True) for v in (np.asarray(x, dtype=float) for x in vectors)]
    for a, b in itertools.combinations(centered, 2):
        norm_a, norm_b = np.sqrt((a * a).sum(axis=1)), np.sqrt((b * b).sum(axis=1))
        constant = (norm_a < 1e-12) | (norm_b < 1e-12)  # rounding leaves ~1e-17 in a flat vector
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (a * b).sum(axis=1) / (norm_a * norm_b)
        per_pair.append(np.where(constant, np.nan, r))
    if not per_pair:
        return None, 0
    stacked = np.vstack(per_pair)
    defined = np.isfinite(stacked).any(axis=0)
    if not defined.any():
        return None, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_item = np.nanmean(stacked[:, defined], axis=0)
    return float(per_item.mean()), int(defined.sum())


def agreement(
    runs: Sequence[pd.DataFrame],
    id_columns: Sequence[str],
    pred_column: str,
    names: Optional[Sequence[str]] = None,
    intensity_column: Optional[str] = None,
) -> dict[str, Any]:
    """Agreement of `runs` over the items (rows with the same ids) that every run labeled."""
    if len(runs) < 2:
        raise ValueError(f"agreement needs at least 2 runs, got {len(runs)}")
    names = list(names) if names is not None else [f"run{i}" for i in range(len(runs))]
    ids = list(id_columns)
    keyed = []
    for name, df in zip(names, runs):
        missing = [c for c in [*ids, pred_column] if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing columns {missing} (has: {list(df.columns)})")
        key = pd.MultiIndex.from_frame(pd.DataFrame({c: id_strings(df[c]) for c in ids}))
        if key.has_duplicates:
            raise ValueError(f"{name}: {int(key.duplicated().sum())} rows repeat an id; ids must be unique per run")
        keyed.append(df.set_axis(key, axis=0))
    all_items = set().union(*(set(k.index) for k in keyed))
    common = keyed[0].index
    for k in keyed[1:]:
        common = common.intersection(k.index, sort=False)
    labels = pd.DataFrame({n: k.loc[common, pred_column].to_numpy() for n, k in zip(names, keyed)}, index=common)
    labeled = labels.notna().all(axis=1)
    labels = labels[labeled]
    result: dict[str, Any] = {
        "n_runs": len(runs),
        "runs": names,
        "n_items": len(labels),
        "dropped_items": len(all_items) - len(labels),
    }
    if len(labels) == 0:
        raise ValueError(f"no item has a {pred_column!r} label in every run (check id_columns {ids})")
    matrix = labels.to_numpy(dtype=object)
    categories = sorted({str(x) for x in matrix.ravel()})
    result["fleiss_kappa"] = fleiss(matrix)
    result["per_category"] = per_category_fleiss(matrix, categories)
    result["pairwise_cohen"] = pairwise_cohen(matrix, names)
    kappas = [p["kappa"] for p in result["pairwise_cohen"] if p["kappa"] is not None]
    result["mean_pairwise_cohen"] = float(np.mean(kappas)) if kappas else None

    frames = [intensity_frame(k.loc[labels.index], intensity_column) for k in keyed]
    if any(f is None for f in frames):
        result["mean_intensity_correlation"], result["n_items_with_correlation"] = None, 0
    else:
        columns = list(dict.fromkeys(c for f in frames for c in f.columns))
        vectors = [f.reindex(columns=columns, fill_value=0.0).to_numpy() for f in frames]
        mean, n = mean_intensity_correlation(vectors)
        result["mean_intensity_correlation"], result["n_items_with_correlation"] = mean, n
    return result
