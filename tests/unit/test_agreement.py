import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from mikupal.evaluate.agreement import agreement, fleiss, mean_intensity_correlation, per_category_fleiss

CATS = ["Joy", "Anger", "Sadness", "Calmness"]

# Fleiss (1971) via Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210
WIKI_COUNTS = np.array(
    [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
     [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
)  # fmt: skip


def _statsmodels(labels):
    _, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return fleiss_kappa(aggregate_raters(codes.reshape(np.shape(labels)))[0])


def test_fleiss_textbook_example():
    labels = np.array([np.repeat(np.arange(5), row) for row in WIKI_COUNTS])
    assert fleiss(labels) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_random_perfect_and_chance_level():
    rng = np.random.default_rng(3)
    truth = rng.choice(CATS, 80)
    noisy = np.column_stack([np.where(rng.random(80) < 0.6, truth, rng.choice(CATS, 80)) for _ in range(4)])
    assert fleiss(noisy) == pytest.approx(_statsmodels(noisy))
    assert 0.3 < fleiss(noisy) < 0.9

    perfect = np.column_stack([truth] * 5)
    assert fleiss(perfect) == pytest.approx(1.0)

    chance = rng.choice(CATS, (4000, 3))
    assert fleiss(chance) == pytest.approx(_statsmodels(chance))
    assert abs(fleiss(chance)) < 0.03

    assert fleiss(np.full((10, 3), "Joy")) is None  # kappa undefined when nothing varies


def test_per_category_is_one_vs_rest_fleiss():
    rng = np.random.default_rng(4)
    labels = rng.choice(CATS, (60, 3))
    labels[:30, 1] = labels[:30, 0]
    per = per_category_fleiss(labels)
    assert set(per) == set(CATS)
    for c in CATS:
        binary = (labels == c).astype(int)
        assert per[c] == pytest.approx(fleiss_kappa(aggregate_raters(binary, n_cat=2)[0]))


def _runs(rng, n=40, k=3, same=False):
    names = CATS
    base = rng.dirichlet(np.ones(len(names)), n)
    runs = []
    for r in range(k):
        vec = base if same else np.clip(base + rng.normal(0, 0.08, base.shape), 0, None)
        runs.append(
            pd.DataFrame(
                {
                    "segment_id": [f"s{i}" for i in range(n)],
                    "primary_emotion": [names[j] for j in vec.argmax(axis=1)],
                    "emotions": [[{"name": a, "intensity": float(x)} for a, x in zip(names, row)] for row in vec],
                }
            ).sample(frac=1.0, random_state=r)  # rows in a different order per run
        )
    return runs


def test_agreement_report_matches_the_reference_implementations():
    rng = np.random.default_rng(5)
    runs = _runs(rng)
    runs[2] = runs[2].iloc[:-3]  # three items missing from one run are dropped
    result = agreement(runs, ["segment_id"], "primary_emotion", names=["a", "b", "c"])
    assert result["n_items"] == 37 and result["dropped_items"] == 3 and result["n_runs"] == 3

    aligned = [r.set_index("segment_id").sort_index() for r in runs]
    common = aligned[2].index
    labels = np.column_stack([a.loc[common, "primary_emotion"] for a in aligned])
    assert result["fleiss_kappa"] == pytest.approx(_statsmodels(labels))
    pairs = {(p["run_a"], p["run_b"]): p["kappa"] for p in result["pairwise_cohen"]}
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert pairs[("a", "c")] == pytest.approx(cohen_kappa_score(labels[:, 0], labels[:, 2]))
    assert result["mean_pairwise_cohen"] == pytest.approx(np.mean(list(pairs.values())))

    vectors = [np.array([[e["intensity"] for e in a.loc[i, "emotions"]] for i in common]) for a in aligned]
    per_item = [
        np.mean([pearsonr(vectors[x][i], vectors[y][i])[0] for x, y in ((0, 1), (0, 2), (1, 2))])
        for i in range(len(common))
    ]
    assert result["mean_intensity_correlation"] == pytest.approx(np.mean(per_item))
    assert result["n_items_with_correlation"] == 37


def test_identical_runs_and_runs_without_intensities():
    runs = _runs(np.random.default_rng(6), same=True)
    result = agreement(runs, ["segment_id"], "primary_emotion")
    assert result["fleiss_kappa"] == pytest.approx(1.0)
    assert all(p["kappa"] == pytest.approx(1.0) for p in result["pairwise_cohen"])
    assert result["mean_intensity_correlation"] == pytest.approx(1.0)

    plain = [r.drop(columns="emotions") for r in runs]
    assert agreement(plain, ["segment_id"], "primary_emotion")["mean_intensity_correlation"] is None

    wide = [
        r.drop(columns="emotions").assign(
            emotion_Joy=r.segment_id.str[1:].astype(int) % 3, emotion_Anger=1.0, emotion_agreement=np.arange(len(r))
        )  # emotion_agreement is not a category: it differs per run and must not enter the vectors
        for r in runs
    ]
    assert agreement(wide, ["segment_id"], "primary_emotion")["mean_intensity_correlation"] == pytest.approx(1.0)


def test_mean_intensity_correlation_skips_undefined_pairs():
    a = np.array([[1.0, 0.0, 0.0], [0.2, 0.2, 0.2]])
    b = np.array([[0.0, 1.0, 0.0], [0.1, 0.5, 0.1]])
    mean, n = mean_intensity_correlation([a, b])
    assert n == 1 and mean == pytest.approx(pearsonr(a[0], b[0])[0])


def test_agreement_input_errors():
    runs = _runs(np.random.default_rng(8), k=2)
    with pytest.raises(ValueError, match="at least 2 runs"):
        agreement(runs[:1], ["segment_id"], "primary_emotion")
    with pytest.raises(ValueError, match="repeat an id"):
        agreement([runs[0], pd.concat([runs[1], runs[1].iloc[:1]])], ["segment_id"], "primary_emotion")
    with pytest.raises(ValueError, match=r"missing columns \['label'\]"):
        agreement(runs, ["segment_id"], "label")
