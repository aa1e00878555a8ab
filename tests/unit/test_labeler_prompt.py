"""The versioned prompt: task + every category with its description + output format."""

from __future__ import annotations

import pytest

from mikupal.errors import UserError
from mikupal.labelers.prompt import available_versions, load_prompt
from mikupal.taxonomy import load_taxonomy


@pytest.mark.parametrize("tax", ["cowen_keltner_26", "meld", "iemocap"])
@pytest.mark.parametrize("mode", ["video", "audio", "text"])
def test_system_prompt_names_every_category_with_description(tax, mode):
    t = load_taxonomy(tax)
    p = load_prompt("v1", t, mode)
    for c in t.categories:
        assert f"- **{c.name}**: {c.description}" in p.system
    assert "# Task" in p.system and "# Output format" in p.system
    assert "$" not in p.system  # every placeholder filled
    assert p.system.index("# Task") < p.system.index(t.categories[0].description) < p.system.index("# Output format")


def test_modes_and_closed_sets_change_the_right_parts():
    ck, meld = load_taxonomy("cowen_keltner_26"), load_taxonomy("meld")
    video = load_prompt("v1", ck, "video")
    assert "face" in video.system.lower() and "`face_analysis`" in video.system
    assert "`intensities`" in video.system and "26 categories" in video.system
    text = load_prompt("v1", ck, "text")
    assert "`face_analysis`" not in text.system and "no audio and no video" in text.system
    closed = load_prompt("v1", meld, "audio")
    assert "exactly one" in closed.system and "`intensities`" not in closed.system
    assert "`voice_analysis`" in closed.system and "`face_analysis`" not in closed.system


def test_user_turn_holds_only_transcript_and_context():
    ck = load_taxonomy("cowen_keltner_26")
    u = load_prompt("v1", ck, "video").user_text("  I won!  ", ["ignored in video mode"])
    assert "I won!" in u and "ignored" not in u
    t = load_prompt("v1", ck, "text").user_text("I won!", ["Did you hear?", "", "The results are out."])
    assert t.index("1. Did you hear?") < t.index("2. The results are out.") < t.index("I won!")
    assert "<context>" not in load_prompt("v1", ck, "text").user_text("I won!")


def test_unknown_version_and_mode_are_user_errors():
    ck = load_taxonomy("cowen_keltner_26")
    assert "v1" in available_versions()
    with pytest.raises(UserError, match="v9"):
        load_prompt("v9", ck)
    with pytest.raises(UserError):
        load_prompt("../etc", ck)
    with pytest.raises(UserError, match="mode"):
        load_prompt("v1", ck, "smell")
    assert load_prompt("v1", ck).digest == load_prompt("v1", ck).digest
