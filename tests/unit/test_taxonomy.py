import re

import pytest

from mikupal.taxonomy import Taxonomy, TaxonomyError, load_taxonomy

THE_26 = [
    "Admiration", "Adoration", "Aesthetic appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Confusion", "Craving", "Disgust", "Empathic pain",
    "Entrancement", "Excitement", "Fear", "Horror", "Interest", "Joy", "Romance", "Nostalgia",
    "Relief", "Sadness", "Satisfaction", "Surprise",
]  # fmt: skip
MELD = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
IEMOCAP = ["angry", "happy", "sad", "neutral", "frustrated", "excited", "fearful", "surprised", "disgusted", "other"]


@pytest.fixture(scope="module")
def ck():
    return load_taxonomy("cowen_keltner_26")


def test_26_unique_categories_with_descriptions_and_colors(ck):
    assert ck.names() == THE_26
    assert len(set(ck.names())) == 26
    assert not ck.closed
    for c in ck.categories:
        assert len(c.description.split()) >= 8, c.name
        assert re.fullmatch(r"#[0-9a-fA-F]{6}", c.color), c.name
    assert len({c.color.lower() for c in ck.categories}) == 26


@pytest.mark.parametrize("target,labels", [("meld", MELD), ("iemocap", IEMOCAP)])
def test_mappings_total_and_onto_the_target_labels(ck, target, labels):
    closed = load_taxonomy(target)
    assert closed.closed and closed.names() == labels
    assert all(c.description for c in closed.categories)
    mapping = ck.mappings[target]
    assert set(mapping) == set(THE_26)
    assert set(mapping.values()) <= set(labels)
    for name in THE_26:
        assert ck.map_label(name, target) in labels


def test_documented_mapping_choices(ck):
    for name in ("Calmness", "Boredom", "Interest"):
        assert ck.map_label(name, "meld") == "neutral"
    assert ck.map_label("Horror", "meld") == "fear"
    assert ck.map_label("Excitement", "iemocap") == "excited"
    assert ck.map_label("  empathic PAIN ", "meld") == "sadness"  # case and spaces ignored


def test_map_intensities_sums_per_target_label(ck):
    # Anger alone is the largest category, but Joy + Amusement sum to more "joy".
    assert ck.map_intensities({"Joy": 0.3, "Amusement": 0.3, "Anger": 0.5}, "meld") == "joy"
    assert ck.map_intensities({"Joy": 0.3, "Anger": 0.5}, "meld") == "anger"
    assert ck.map_intensities({"calmness": 0.2, "Boredom": 0.2, "Fear": 0.3}, "meld") == "neutral"
    with pytest.raises(ValueError, match="Jealousy"):
        ck.map_intensities({"Jealousy": 1.0}, "meld")
    with pytest.raises(ValueError, match="no mapping to 'goemotions'"):
        ck.map_intensities({"Joy": 1.0}, "goemotions")
    with pytest.raises(ValueError, match=">= 0"):
        ck.map_intensities({"Joy": -1.0}, "meld")


USER_YAML = """
name: tiny
closed: false
categories:
  - {name: Happy, description: Smiling and laughing., color: "#ffcc00"}
  - {name: Grumpy, description: Frowning and muttering., color: "#aa0000"}
mappings:
  meld: {Happy: joy, Grumpy: anger}
"""


def test_user_yaml_loads_and_is_checked_against_the_target(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(USER_YAML)
    tax = load_taxonomy(str(path))
    assert isinstance(tax, Taxonomy) and tax.names() == ["Happy", "Grumpy"]
    assert tax.map_label("Grumpy", "meld") == "anger"

    path.write_text(USER_YAML.replace("Grumpy: anger", "Grumpy: grumpiness"))
    with pytest.raises(ValueError, match=r"tiny\.yaml.*mappings\.meld.*grumpiness"):
        load_taxonomy(path)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("name: x\ncategories: [\n", r"not valid YAML"),
        ("- just\n- a list\n", r"expected a mapping"),
        (USER_YAML.replace("name: Grumpy", "name: Happy"), r"duplicate category names: \['Happy'\]"),
        (USER_YAML.replace("Frowning and muttering.", '" "'), r"categories\.1\.description"),
        (USER_YAML.replace(", Grumpy: anger", ""), r"mappings\.meld is not total.*Grumpy"),
        (USER_YAML.replace('"#aa0000"', "red"), r"categories\.1\.color"),
        (USER_YAML.replace("closed: false", "closed: false\nlabels: []"), r"labels"),
    ],
)
def test_bad_yaml_gives_a_clear_error(tmp_path, text, expected):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected) as info:
        load_taxonomy(str(path))
    assert "bad.yml" in str(info.value)


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(TaxonomyError, match="unknown taxonomy 'nope'"):
        load_taxonomy("nope")
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(str(tmp_path / "missing.yaml"))
