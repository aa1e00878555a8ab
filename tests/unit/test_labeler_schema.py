"""The response schema per taxonomy and mode, and validation of the model's answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.labelers.schema import InvalidOutput, OutputSchema, SampleLabel, aggregate  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import fake_value  # noqa: E402

CK = load_taxonomy("cowen_keltner_26")
MELD = load_taxonomy("meld")


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


@pytest.mark.parametrize("tax", ["cowen_keltner_26", "meld", "iemocap"])
@pytest.mark.parametrize("mode", ["video", "audio", "text"])
def test_schema_is_in_both_apis_subset(tax, mode):
    s = OutputSchema(load_taxonomy(tax), mode).json_schema()
    allowed = {"type", "properties", "required", "enum", "minimum", "maximum", "additionalProperties", "description"}
    for node in _walk(s):
        if "type" in node or "enum" in node:
            assert set(node) <= allowed, set(node) - allowed
        if node.get("type") == "object":  # OpenAI strict: closed objects, every property required
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    assert "$ref" not in json.dumps(s) and "$defs" not in json.dumps(s)


def test_open_schema_has_every_category_in_unit_range():
    s = OutputSchema(CK, "video").json_schema()
    props = s["properties"]
    assert list(props)[:3] == ["face_analysis", "voice_analysis", "text_analysis"]
    inten = props["intensities"]["properties"]
    assert list(inten) == CK.names() and len(inten) == 26
    assert all(v == {"type": "number", "minimum": 0.0, "maximum": 1.0} for v in inten.values())
    assert props["primary_emotion"]["enum"] == CK.names()


def test_closed_schema_is_one_label():
    s = OutputSchema(MELD, "text").json_schema()
    assert "intensities" not in s["properties"]
    assert s["properties"]["primary_emotion"]["enum"] == MELD.names()
    assert list(s["properties"]) == ["text_analysis", "rationale", "primary_emotion"]
    lab = OutputSchema(MELD, "text").parse(json.dumps({"text_analysis": "t", "rationale": "r", "primary_emotion": "joy"}))
    assert lab.primary == "joy" and lab.intensities["joy"] == 1.0 and sum(lab.intensities.values()) == 1.0


def test_modes_drop_the_missing_modalities():
    assert "face_analysis" not in OutputSchema(CK, "audio").json_schema()["properties"]
    assert list(OutputSchema(CK, "text").json_schema()["properties"])[0] == "text_analysis"


def _answer(**over):
    obj = {"face_analysis": "f", "voice_analysis": "v", "text_analysis": "t", "rationale": "r",
           "intensities": {n: 0.0 for n in CK.names()}, "primary_emotion": "Joy"}
    obj["intensities"]["Joy"] = 0.8
    obj.update(over)
    return obj


def test_parse_valid_and_forgiving():
    s = OutputSchema(CK, "video")
    lab = s.parse(json.dumps(_answer()))
    assert lab.primary == "Joy" and lab.intensities["Joy"] == 0.8 and len(lab.intensities) == 26
    # fences, case and spacing of names are forgiven (local models)
    a = _answer(primary_emotion=" joy ")
    a["intensities"] = {k.upper(): v for k, v in a["intensities"].items()}
    assert s.parse("```json\n" + json.dumps(a) + "\n```").primary == "Joy"


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "empty"),
        ('{"face_analysis": "f", "voice', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(_answer(primary_emotion="Happiness")), "primary_emotion"),
        (json.dumps({**_answer(), "extra": 1}), "extra"),
        (json.dumps({k: v for k, v in _answer().items() if k != "rationale"}), "rationale"),
    ],
)
def test_parse_rejects(text, needle):
    with pytest.raises(InvalidOutput, match=needle):
        OutputSchema(CK, "video").parse(text)


def test_parse_rejects_out_of_range_missing_category_and_nan():
    s = OutputSchema(CK, "video")
    a = _answer()
    a["intensities"]["Anger"] = 1.5
    with pytest.raises(InvalidOutput, match="Anger"):
        s.parse(json.dumps(a))
    a = _answer()
    del a["intensities"]["Anger"]
    with pytest.raises(InvalidOutput, match="Anger"):
        s.parse(json.dumps(a))
    with pytest.raises(InvalidOutput):
        s.parse(json.dumps(_answer()).replace("0.8", "NaN"))


def test_fake_answers_validate():
    for tax in (CK, MELD):
        s = OutputSchema(tax, "video")
        for i in range(5):
            lab = s.parse(json.dumps(fake_value(s.json_schema(), f"seed{i}")))
            if not tax.closed:
                assert lab.intensities[lab.primary] == max(lab.intensities.values())


def test_aggregate_mean_modal_and_agreement():
    names = ["A", "B", "C"]
    labs = [
        SampleLabel({"A": 0.9, "B": 0.1, "C": 0.0}, "A", rationale="first A"),
        SampleLabel({"A": 0.1, "B": 0.8, "C": 0.0}, "B"),
        SampleLabel({"A": 0.8, "B": 0.2, "C": 0.3}, "A", rationale="second A"),
    ]
    mean, chosen, agreement = aggregate(labs, names)
    assert mean == pytest.approx({"A": 0.6, "B": 1.1 / 3, "C": 0.1})
    assert chosen.primary == "A" and chosen.rationale == "first A"
    assert agreement == pytest.approx(2 / 3)
    assert aggregate(labs[:1], names)[2] is None  # one sample: no agreement score
