from pathlib import Path

import pytest

from mikupal.evaluate.datasets.meld import (
    MeldUtterance,
    clean_text,
    format_context,
    meld_csv,
    meld_table,
    parse_timestamp,
    read_meld,
    with_context,
)

MELD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "meld"
TYPOGRAPHIC = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"
needs_meld = pytest.mark.skipif(not (MELD_DIR / "test_sent_emo.csv").is_file(), reason="shared MELD CSVs absent")


@pytest.fixture(scope="module")
def test_rows():
    return read_meld(MELD_DIR, "test")


def test_parse_timestamp_with_and_without_leading_zero():
    assert parse_timestamp("0:10:44,769") == pytest.approx(644.769)
    assert parse_timestamp("00:14:38,127") == pytest.approx(878.127)
    assert parse_timestamp("1:02:03.5") == pytest.approx(3723.5)
    assert parse_timestamp("0:00:07") == 7.0
    for bad in ("", "10:44", "0:10:44;769", "abc"):
        with pytest.raises(ValueError, match="timestamp"):
            parse_timestamp(bad)


def test_clean_text_repairs_mojibake_and_writes_ascii_punctuation():
    assert clean_text("It\u2019s \u2018fine\u2019\u2014really\u2026") == "It's 'fine'--really..."
    # UTF-8 bytes of ’ “ ” — … read as cp1252 (what MELD's CSVs carry in some copies)
    mojibake = "It\u00e2\u20ac\u2122s \u00e2\u20ac\u0153hi\u00e2\u20ac\x9d \u00e2\u20ac\u201d ok\u00e2\u20ac\u00a6"
    assert clean_text(mojibake) == 'It\'s "hi" -- ok...'
    assert clean_text("caf\u00c3\u00a9") == "caf\u00e9"  # Ã© -> é
    assert clean_text("Don\x92t") == "Don't"  # a lone cp1252 byte read as latin-1
    assert clean_text("Nestl\u00e9 Toll House?") == "Nestl\u00e9 Toll House?"  # real accents stay
    assert clean_text("\u2019\u2014") == "'--"  # genuine typographic run, not mojibake


@needs_meld
@pytest.mark.parametrize("split,count", [("train", 9989), ("dev", 1109), ("test", 2610)])
def test_row_counts_per_split(split, count):
    rows = read_meld(MELD_DIR, split)
    assert len(rows) == count
    assert len({(r.dialogue_id, r.utterance_id) for r in rows}) == count
    assert {r.emotion for r in rows} == {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
    assert {r.sentiment for r in rows} == {"negative", "neutral", "positive"}
    assert all(0 <= r.start <= r.end for r in rows)
    assert not any(c in r.text for r in rows for c in TYPOGRAPHIC)


@needs_meld
def test_quirks_on_the_shared_test_split(test_rows):
    by_id = {(r.dialogue_id, r.utterance_id): r for r in test_rows}
    first = by_id[(0, 0)]
    assert first.start == pytest.approx(878.127) and first.end == pytest.approx(880.378)  # "00:14:38,127"
    assert first.text_raw == "Why do all you\u2019re coffee mugs have numbers on the bottom?"
    assert first.text == "Why do all you're coffee mugs have numbers on the bottom?"
    assert first.clip == "dia0_utt0.mp4" and first.speaker == "Mark" and first.emotion == "surprise"
    # a quoted field with commas and nested typographic quotes
    second = by_id[(0, 1)]
    assert second.text == (
        "Oh. That's so Monica can keep track. That way if one on them is missing, she can be like, 'Where's number 27?!'"
    )
    lydia = by_id[(1, 0)]
    assert lydia.text == "Come on, Lydia, you can do it."
    assert lydia.start == pytest.approx(644.769)  # "0:10:44,769", no leading zero
    typographic = [r for r in test_rows if not r.text_raw.isascii()]
    assert 0.25 < len(typographic) / len(test_rows) < 0.32


@needs_meld
def test_table_and_dialogue_context(test_rows):
    table = meld_table(test_rows)
    assert table.num_rows == len(test_rows)
    assert table.schema == MeldUtterance.arrow_schema()
    for column in ("dialogue_id", "utterance_id", "speaker", "text", "text_raw", "emotion", "start", "end", "clip"):
        assert column in table.column_names

    context = {(r.dialogue_id, r.utterance_id): prev for r, prev in with_context(test_rows)}
    assert [p.utterance_id for p in context[(0, 2)]] == [0, 1]
    assert context[(0, 0)] == []
    last_only = {(r.dialogue_id, r.utterance_id): prev for r, prev in with_context(test_rows, max_turns=1)}
    assert [p.utterance_id for p in last_only[(0, 2)]] == [1]
    assert format_context(context[(0, 2)]).splitlines()[0] == "Mark: Why do all you're coffee mugs have numbers on the bottom?"


def test_split_resolution_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown MELD split"):
        meld_csv(tmp_path, "holdout")
    with pytest.raises(ValueError, match="dev split not found"):
        meld_csv(tmp_path, "validation")
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_meld(bad)
