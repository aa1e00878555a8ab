"""The MIKU-PAL emotion map: a 2-D t-SNE of the segments' intensity vectors, each point coloured
by the intensity-weighted mix of its categories' colours; and label-distribution bar plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from mikupal.evaluate.intensities import intensity_frame
from mikupal.taxonomy import Taxonomy, TaxonomyError

UNKNOWN_COLOR = "#bbbbbb"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rgb(hex_color: str) -> np.ndarray:
    h = hex_color.lstrip("#")[:6]
    return np.array([int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)])


def _canonical(taxonomy: Taxonomy, name: str) -> Optional[str]:
    for candidate in (name, name.replace("_", " ")):
        try:
            return taxonomy.canonical(candidate)
        except TaxonomyError:
            continue
    return None


def taxonomy_order(intensities: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Columns renamed to the taxonomy's spelling and put in its order; unknown names last."""
    renamed = intensities.rename(columns=lambda c: _canonical(taxonomy, str(c)) or str(c))
    renamed = renamed.T.groupby(level=0, sort=False).sum().T  # "joy" and "Joy" are one category
    known = [n for n in taxonomy.names() if n in renamed.columns]
    return renamed[known + [c for c in renamed.columns if c not in known]]


def blend_colors(intensities: pd.DataFrame, taxonomy: Taxonomy) -> np.ndarray:
    """n x 3 RGB: each row's category colours weighted by its intensities (grey when all are 0)."""
    colors = taxonomy.colors()
    palette = np.array([_rgb(colors.get(c, UNKNOWN_COLOR)) for c in intensities.columns]).reshape(-1, 3)
    weights = np.clip(intensities.to_numpy(dtype=float), 0.0, None)
    total = weights.sum(axis=1, keepdims=True)
    mixed = weights @ palette / np.where(total > 0, total, 1.0)
    mixed[total[:, 0] <= 0] = _rgb(UNKNOWN_COLOR)
    return np.clip(mixed, 0.0, 1.0)


def tsne_2d(vectors: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(vectors)
    if n < 2:
        raise ValueError(f"the emotion map needs at least 2 segments with intensities, got {n}")
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # Barnes-Hut runs ~1000 short OpenMP regions: for small maps thread start-up dominates
    # (measured: 36 points, 2 busy cores: 8.9 s with 2 threads, 0.16 s with 1).
    with threadpool_limits(limits=1 if n < 2000 else None, user_api="openmp"):
        return tsne.fit_transform(vectors)


def plot_emotion_map(
    segments: pd.DataFrame,
    taxonomy: Taxonomy,
    path: str | Path,
    intensity_column: Optional[str] = None,
    perplexity: float = 30.0,
    seed: int = 0,
    max_points: int = 5000,
) -> Path:
    frame = intensity_frame(segments, intensity_column)
    if frame is None:
        raise ValueError("no intensities to map: need an `emotions` column or `emotion_<name>` columns")
    frame = taxonomy_order(frame, taxonomy)
    if len(frame) > max_points:
        frame = frame.sample(n=max_points, random_state=seed)
    xy = tsne_2d(frame.to_numpy(dtype=float), perplexity=perplexity, seed=seed)
    colors = blend_colors(frame, taxonomy)

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=14, alpha=0.85, linewidths=0)
    totals = frame.sum(axis=0).sort_values(ascending=False)
    shown = [c for c in totals.index if totals[c] > 0][:12]
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=taxonomy.colors().get(c, UNKNOWN_COLOR), label=c)
        for c in shown
    ]
    if handles:
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    ax.set_title(f"Emotion map (t-SNE of intensity vectors, n={len(frame)})")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_label_distribution(
    segments: pd.DataFrame,
    taxonomy: Taxonomy,
    path: str | Path,
    label_column: str = "primary_emotion",
    intensity_column: Optional[str] = None,
) -> Path:
    """Bars of primary-label counts per category (and, with intensities, the mean intensity)."""
    panels = []
    if label_column in segments.columns:
        labels = segments[label_column].dropna().astype(str).map(lambda x: _canonical(taxonomy, x) or x)
        counts = labels.value_counts()
        order = taxonomy.names() + sorted(set(counts.index) - set(taxonomy.names()))
        panels.append((f"{label_column} count", counts.reindex(order, fill_value=0)))
    frame = intensity_frame(segments, intensity_column)
    if frame is not None:
        frame = taxonomy_order(frame, taxonomy)
        panels.append(("mean intensity", frame.mean(axis=0)))
    if not panels:
        raise ValueError(f"nothing to plot: no {label_column!r} column and no intensities")

    plt = _plt()
    height = max(4.0, 0.25 * max(len(s) for _, s in panels) + 1.0)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), height), squeeze=False)
    colors = taxonomy.colors()
    for ax, (title, series) in zip(axes[0], panels):
        ax.barh(range(len(series)), series.to_numpy(), color=[colors.get(c, UNKNOWN_COLOR) for c in series.index])
        ax.set_yticks(range(len(series)), list(series.index), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(title)
    fig.suptitle(f"Label distribution (n={len(segments)})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
