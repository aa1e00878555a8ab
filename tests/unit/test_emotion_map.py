import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mikupal.errors import UserError
from mikupal.commands.emotion_map import emotion_map_command
from mikupal.evaluate.emotion_map import blend_colors, plot_emotion_map, plot_label_distribution, taxonomy_order
from mikupal.taxonomy import load_taxonomy

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy("cowen_keltner_26")


def _segments(tax, n=36, seed=0):
    rng = np.random.default_rng(seed)
    names = tax.names()
    vectors = rng.dirichlet(np.full(len(names), 0.2), n)
    return pd.DataFrame(
        {
            "segment_id": [f"v_{i:09d}" for i in range(n)],
            "primary_emotion": [names[j] for j in vectors.argmax(axis=1)],
            "emotions": [[{"name": a, "intensity": float(x)} for a, x in zip(names, row)] for row in vectors],
        }
    )


def test_blend_colors_weights_category_colors(tax):
    joy = np.array([int(tax.category("Joy").color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    sad = np.array([int(tax.category("Sadness").color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    frame = pd.DataFrame({"joy": [0.8, 0.5, 0.0], "Sadness": [0.0, 0.5, 0.0]})
    ordered = taxonomy_order(frame, tax)
    assert list(ordered.columns) == ["Joy", "Sadness"]  # taxonomy spelling and order
    colors = blend_colors(ordered, tax)
    assert colors[0] == pytest.approx(joy)
    assert colors[1] == pytest.approx((joy + sad) / 2)
    assert colors[2] == pytest.approx([0xBB / 255] * 3)  # no intensity: grey


def test_plots_are_written(tax, tmp_path):
    segments = _segments(tax)
    assert plot_emotion_map(segments, tax, tmp_path / "map.png").read_bytes()[:8] == PNG
    assert plot_label_distribution(segments, tax, tmp_path / "dist.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no intensities"):
        plot_emotion_map(segments.drop(columns="emotions"), tax, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least 2 segments"):
        plot_emotion_map(segments.iloc[:1], tax, tmp_path / "x.png")


def test_emotion_map_command_reads_a_run_dir(tax, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "segments").mkdir(parents=True)
    schema = pa.schema(
        [
            ("segment_id", pa.string()),
            ("primary_emotion", pa.string()),
            ("emotions", pa.list_(pa.struct([("name", pa.string()), ("intensity", pa.float64())]))),
        ]
    )
    segments = _segments(tax, n=30)
    half = len(segments) // 2
    for i, part in enumerate((segments.iloc[:half], segments.iloc[half:])):  # one file per video
        pq.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False), run / "segments" / f"v{i}.parquet")

    assert emotion_map_command([f"input={run}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_segments"] == 30
    for name in ("emotion_map.png", "label_distribution.png"):
        assert (run / name).read_bytes()[:8] == PNG
    assert emotion_map_command([f"input={run}/segments", f"output={tmp_path}/plots", "perplexity=5", "seed=1"]) == 0
    assert (tmp_path / "plots" / "emotion_map.png").is_file()

    with pytest.raises(UserError, match="not found"):
        emotion_map_command([f"input={tmp_path}/nothing"])
    with pytest.raises(UserError, match="missing input="):
        emotion_map_command([])
