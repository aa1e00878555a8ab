import pytest

from mikupal.evaluate.datasets.iemocap import iemocap_frame, read_iemocap

EVAL_IMPRO = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]
C-E2:\tFrustration;\t()

[14.8872 - 18.0175]\tSes01F_impro01_F002\txxx\t[2.5000, 3.0000, 3.0000]
"""
EVAL_SCRIPT = """[1.0 - 2.5]\tSes02M_script01_1_M000\texc\t[4.0, 4.0, 3.0]
[3.0 - 4.0]\tSes02M_script01_1_F001\thap\t[4.5, 3.0, 3.0]
"""
TRANSCRIPT = """Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
Ses01F_impro01_M001 [010.0100-011.3925]: Do you have your forms?
"""


@pytest.fixture
def root(tmp_path):
    ev1 = tmp_path / "Session1" / "dialog" / "EmoEvaluation"
    ev1.mkdir(parents=True)
    (ev1 / "Ses01F_impro01.txt").write_text(EVAL_IMPRO)
    (ev1 / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07junk")  # macOS resource fork
    (ev1 / "Categorical").mkdir()
    (ev1 / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text("Ses01F_impro01_F000 :Neutral state; ()\n")
    tr = tmp_path / "Session1" / "dialog" / "transcriptions"
    tr.mkdir(parents=True)
    (tr / "Ses01F_impro01.txt").write_text(TRANSCRIPT)
    ev2 = tmp_path / "Session2" / "dialog" / "EmoEvaluation"
    ev2.mkdir(parents=True)
    (ev2 / "Ses02M_script01_1.txt").write_text(EVAL_SCRIPT)
    return tmp_path


def test_reads_the_release_layout(root):
    rows = read_iemocap(root)
    assert [r.utterance_id for r in rows] == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses02M_script01_1_M000", "Ses02M_script01_1_F001",
    ]  # fmt: skip
    first = rows[0]
    assert (first.start, first.end) == (6.2901, 8.2357)
    assert (first.code, first.emotion) == ("neu", "neutral")
    assert (first.valence, first.activation, first.dominance) == (2.5, 2.5, 2.5)
    assert first.text == "Excuse me." and first.speaker == "Ses01F" and first.mode == "improvised"
    assert first.wav_path == "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    assert first.avi_path == "Session1/dialog/avi/DivX/Ses01F_impro01.avi"
    assert rows[1].emotion == "frustrated" and rows[1].speaker == "Ses01M"
    assert [r.emotion for r in rows[2:]] == ["excited", "happy"]
    assert rows[2].mode == "scripted" and rows[2].dialog == "Ses02M_script01_1" and rows[2].text == ""


def test_unlabeled_sessions_and_frame(root):
    with_xxx = read_iemocap(root, keep_unlabeled=True)
    assert [r.emotion for r in with_xxx if r.code == "xxx"] == [None]
    assert [r.session for r in read_iemocap(root, sessions=[2])] == [2, 2]
    frame = iemocap_frame(root)
    assert list(frame["emotion"]) == ["neutral", "frustrated", "excited", "happy"]


def test_errors(tmp_path, root):
    with pytest.raises(ValueError, match="no Session1..Session5"):
        read_iemocap(tmp_path / "nothing")
    bad = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro02.txt"
    bad.write_text("[1.0 - 2.0]\tSes02F_impro02_F000\tjoy\t[1.0, 1.0, 1.0]\n")
    with pytest.raises(ValueError, match=r"Ses02F_impro02\.txt:1: unknown emotion code 'joy'"):
        read_iemocap(root)
