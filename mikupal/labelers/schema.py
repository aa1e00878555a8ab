"""The structured answer: a pydantic model built per taxonomy and mode, sent as the response schema.

Shape (open taxonomy, video mode; property order = the order the model writes them, analyses
first so that the judgement follows the evidence):

    {"face_analysis": str, "voice_analysis": str, "text_analysis": str, "rationale": str,
     "intensities": {"Admiration": 0.0, ..., "Triumph": 0.0},   # one property per category, [0, 1]
     "primary_emotion": "<one category>"}                         # enum

Intensities are an object with one required property per category (not a list of {name,
intensity}): under constrained decoding every category is then present exactly once, which a
list cannot guarantee. Both Gemini's `response_json_schema` and OpenAI's strict `json_schema`
accept it: plain `type/properties/required/enum/minimum/maximum/additionalProperties/description`,
no `$ref`, no titles. Closed label sets (MELD, IEMOCAP) get no intensities: `primary_emotion` is
the one label (enum), stored as intensity 1.0 for it and 0.0 for the others.
Audio mode drops `face_analysis`, text mode keeps only `text_analysis`.

Prompt versions that describe the delivery (v2 on; `prompt.Prompt.delivery`) add, in audio and video
mode, what a TTS user trains on besides the emotion, in the same answer:

    {... analyses ..., "nonverbal_events": [{"event": "laughter", "start": 1.2, "end": 1.9}, ...],
     "gender": "female" | "male" | "unsure", "age": "30s" | ... | "unsure", "accent": str,
     "rationale": ..., "intensities": ..., "primary_emotion": ...,
     "caption": str}                        # one or two sentences on how the line is said

Event names are `NONVERBAL_EVENTS`; times are seconds from the clip's start and must lie inside
it (`parse(text, duration=...)`; an end up to `TIME_TOLERANCE_S` past it is clamped to it).

The SDKs' own parsing (`response.parsed`) silently yields None on bad output, so the text is
validated here (`OutputSchema.parse`) and a failure raises `InvalidOutput` with the reason.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

ANALYSIS_FIELDS = {
    "video": ("face_analysis", "voice_analysis", "text_analysis"),
    "audio": ("voice_analysis", "text_analysis"),
    "text": ("text_analysis",),
}
_ANALYSIS_HELP = {
    "face_analysis": "What the speaker's face shows (expression, gaze, movement) and what it suggests.",
    "voice_analysis": "What the voice conveys (pitch, loudness, tempo, tension, laughter, tremor).",
    "text_analysis": "What the words (and the dialogue context) say about the speaker's emotion.",
}


#: sounds that are not words, with times, that the labeler may report (documented in README)
NONVERBAL_EVENTS = ("laughter", "giggle", "sigh", "sob", "crying", "gasp", "breath", "scream", "cough", "sniff",
                    "throat_clear", "groan", "yawn", "hum")
GENDERS = ("female", "male", "unsure")
AGE_RANGES = ("child", "teen", "20s", "30s", "40s", "50s", "60s", "70+", "unsure")
TIME_TOLERANCE_S = 0.5  # an event may end this far past the clip (rounding, the clip's last frame)
MAX_CAPTION_CHARS = 600
MAX_ACCENT_CHARS = 80
_DELIVERY_HELP = {
    "nonverbal_events": "Sounds that are not words (laughter, sighs, sobs, gasps, audible breaths ...), each "
                        "with its start and end in seconds from the start of the clip; an empty list if none.",
    "gender": "The speaker's perceived gender, or unsure.",
    "age": "The speaker's perceived age range, or unsure.",
    "accent": "The speaker's perceived accent or dialect in a few words (e.g. 'General American English', "
              "'Scottish English', 'Parisian French'), or 'unsure'.",
    "caption": "One or two sentences on how the line is said: emotion and intensity, pitch, pace, loudness, "
               "voice quality, recording conditions.",
}


class InvalidOutput(ValueError):
    """The answer is not valid JSON of the response schema."""


@dataclass
class SampleLabel:
    """One validated answer, normalised: every category has an intensity."""

    intensities: dict[str, float]
    primary: str
    rationale: str = ""
    face_analysis: str = ""
    voice_analysis: str = ""
    text_analysis: str = ""
    nonverbal_events: list[tuple[str, float, float]] = field(default_factory=list)  # (event, start, end) s
    gender: Optional[str] = None  # None: the prompt version does not ask (v1, text mode)
    age: Optional[str] = None
    accent: Optional[str] = None
    caption: Optional[str] = None


def _field_name(i: int) -> str:
    return f"c{i:03d}"


def _delivery_fields(strict: ConfigDict) -> dict[str, Any]:
    """The heard traits of the speaker and the non-verbal events (asked before the judgement)."""
    event = create_model(  # type: ignore[call-overload]
        "NonverbalEvent", __config__=strict,
        event=(Literal.__getitem__(NONVERBAL_EVENTS), Field(description="What was heard.")),  # type: ignore[attr-defined]
        start=(float, Field(ge=0.0, allow_inf_nan=False, description="Seconds from the clip's start.")),
        end=(float, Field(ge=0.0, allow_inf_nan=False, description="Seconds from the clip's start.")),
    )
    return {
        "nonverbal_events": (list[event], Field(description=_DELIVERY_HELP["nonverbal_events"])),  # type: ignore[valid-type]
        "gender": (Literal.__getitem__(GENDERS), Field(description=_DELIVERY_HELP["gender"])),  # type: ignore[attr-defined]
        "age": (Literal.__getitem__(AGE_RANGES), Field(description=_DELIVERY_HELP["age"])),  # type: ignore[attr-defined]
        "accent": (str, Field(description=_DELIVERY_HELP["accent"])),
    }


def delivery_asked(mode: str, delivery: bool) -> bool:
    """Whether an answer describes the delivery: the prompt asks for it, and the model hears the voice."""
    return delivery and mode in ("video", "audio")


def build_output_model(taxonomy, mode: str, delivery: bool = False) -> type[BaseModel]:
    """The pydantic model of one answer for this taxonomy and mode (aliases = category names);
    `delivery` adds the events, traits and caption (audio and video modes only)."""
    if mode not in ANALYSIS_FIELDS:
        raise ValueError(f"unknown labeler mode {mode!r}")
    names = list(taxonomy.names())
    label_type = Literal.__getitem__(tuple(names))  # type: ignore[attr-defined]
    strict = ConfigDict(extra="forbid", populate_by_name=False)
    fields: dict[str, Any] = {}
    for name in ANALYSIS_FIELDS[mode]:
        fields[name] = (str, Field(description=_ANALYSIS_HELP[name]))
    if delivery_asked(mode, delivery):
        fields.update(_delivery_fields(strict))
    fields["rationale"] = (str, Field(description="How the cues combine into the judgement, in one or two sentences."))
    if not taxonomy.closed:
        cats = {
            _field_name(i): (float, Field(ge=0.0, le=1.0, allow_inf_nan=False, alias=n)) for i, n in enumerate(names)
        }
        intensities = create_model("Intensities", __config__=strict, **cats)  # type: ignore[call-overload]
        fields["intensities"] = (
            intensities,
            Field(description="Intensity in [0, 1] of every category (0 = absent, 1 = extreme)."),
        )
        primary_help = "The category with the highest intensity."
    else:
        primary_help = "The single label that best describes the speaker's emotion."
    fields["primary_emotion"] = (label_type, Field(description=primary_help))
    if delivery_asked(mode, delivery):
        fields["caption"] = (str, Field(description=_DELIVERY_HELP["caption"]))
    return create_model("EmotionAnswer", __config__=strict, **fields)  # type: ignore[call-overload]


def _clean(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs, drop titles and pydantic extras, close every object (all properties required)."""
    if isinstance(node, list):
        return [_clean(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _clean(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "default"):
            continue
        if key == "properties":
            out[key] = {name: _clean(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _clean(value, defs)
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "const" in out:  # a one-label Literal: an enum of one
        out["enum"] = [out.pop("const")]
        out.setdefault("type", "string")
    return out


class OutputSchema:
    """The response schema of one (taxonomy, mode), and the validator of answers against it."""

    def __init__(self, taxonomy, mode: str = "video", delivery: bool = False):
        self.taxonomy = taxonomy
        self.mode = mode
        self.closed = bool(taxonomy.closed)
        self.delivery = delivery_asked(mode, delivery)
        self.names: list[str] = list(taxonomy.names())
        self._lookup = {n.strip().casefold(): n for n in self.names}
        self.model = build_output_model(taxonomy, mode, delivery)
        raw = self.model.model_json_schema(by_alias=True)
        self._schema = _clean(raw, raw.get("$defs", {}))

    @property
    def analysis_fields(self) -> tuple[str, ...]:
        return ANALYSIS_FIELDS[self.mode]

    def json_schema(self) -> dict[str, Any]:
        """A fresh copy of the JSON schema (callers may embed it in requests)."""
        return copy.deepcopy(self._schema)

    def field_names(self) -> list[str]:
        return list(self._schema["properties"])

    # ------------------------------------------------------------ validation

    def parse(self, text: Optional[str], duration: float = 0.0) -> SampleLabel:
        """Validate one answer; raise `InvalidOutput` saying what is wrong. `duration` (seconds of
        the clip; 0 = unknown) bounds the non-verbal events' times."""
        obj = self._load(text)
        obj = self._canonicalise(obj)
        try:
            answer = self.model.model_validate(obj)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:3]
            )
            more = f" (+{e.error_count() - 3} more)" if e.error_count() > 3 else ""
            raise InvalidOutput(f"answer does not match the schema: {problems}{more}") from None
        data = answer.model_dump(by_alias=True)
        primary = data["primary_emotion"]
        if self.closed:
            intensities = {n: (1.0 if n == primary else 0.0) for n in self.names}
        else:
            intensities = {n: float(data["intensities"][n]) for n in self.names}
        label = SampleLabel(
            intensities=intensities,
            primary=primary,
            rationale=data.get("rationale", ""),
            face_analysis=data.get("face_analysis", ""),
            voice_analysis=data.get("voice_analysis", ""),
            text_analysis=data.get("text_analysis", ""),
        )
        if self.delivery:
            label.nonverbal_events = _event_times(data["nonverbal_events"], duration)
            label.gender, label.age = data["gender"], data["age"]
            label.accent = _plain(data["accent"], "accent", MAX_ACCENT_CHARS)
            label.caption = _plain(data["caption"], "caption", MAX_CAPTION_CHARS)
            if label.accent.casefold() == "unsure":
                label.accent = "unsure"
        return label

    @staticmethod
    def _load(text: Optional[str]) -> dict[str, Any]:
        if text is None or not text.strip():
            raise InvalidOutput("empty answer")
        body = text.strip()
        fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", body, re.S)  # local models like fences
        if fence:
            body = fence.group(1)
        if not body.startswith("{"):
            i, j = body.find("{"), body.rfind("}")
            if i < 0 or j <= i:
                raise InvalidOutput("answer is not a JSON object")
            body = body[i : j + 1]

        def _no_nan(token: str) -> float:
            raise InvalidOutput(f"answer holds {token}, which is not JSON")

        try:
            obj = json.loads(body, parse_constant=_no_nan)
        except json.JSONDecodeError as e:
            raise InvalidOutput(f"answer is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        if not isinstance(obj, dict):
            raise InvalidOutput(f"answer is a JSON {type(obj).__name__}, not an object")
        return obj

    def _canonical(self, name: Any) -> Any:
        """The taxonomy's spelling (case and surrounding spaces ignored); unknown names stay as
        they are and fail validation with a clear message."""
        if not isinstance(name, str):
            return name
        return self._lookup.get(name.strip().casefold(), name)

    def _canonicalise(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Forgive case and spacing in category names (the schema's enum already constrains most models)."""
        obj = dict(obj)
        if "primary_emotion" in obj:
            obj["primary_emotion"] = self._canonical(obj["primary_emotion"])
        inten = obj.get("intensities")
        if isinstance(inten, dict):
            obj["intensities"] = {self._canonical(k): v for k, v in inten.items()}
        return obj


def _plain(text: str, name: str, limit: int) -> str:
    """One line of text (a caption, an accent): blank, or longer than `limit` characters, is not
    an answer (the lengths are checked here: OpenAI's strict schemas take no string lengths)."""
    value = " ".join(text.split())
    if not value:
        raise InvalidOutput(f"answer does not match the schema: {name}: blank")
    if len(value) > limit:
        raise InvalidOutput(f"answer does not match the schema: {name}: {len(value)} characters (at most {limit})")
    return value


def _event_times(events: list[dict[str, Any]], duration: float) -> list[tuple[str, float, float]]:
    """(event, start, end) in time order; an event that ends before it starts, or lies past the
    clip, makes the answer invalid (it is asked again); an end just past the clip is clamped."""
    out = []
    for i, ev in enumerate(events):
        start, end = float(ev["start"]), float(ev["end"])
        if end < start:
            raise InvalidOutput(f"answer does not match the schema: nonverbal_events.{i}: ends at {end:g} s before "
                                f"it starts ({start:g} s)")
        if duration > 0 and end > duration + TIME_TOLERANCE_S:
            raise InvalidOutput(f"answer does not match the schema: nonverbal_events.{i}: {ev['event']} at "
                                f"{start:g}-{end:g} s lies outside the {duration:.2f} s clip")
        if duration > 0:
            end = min(end, duration)
            start = min(start, end)
        out.append((str(ev["event"]), round(start, 3), round(end, 3)))
    return sorted(out, key=lambda e: (e[1], e[2], e[0]))


def aggregate(labels: list[SampleLabel], names: list[str]) -> tuple[dict[str, float], SampleLabel, Optional[float]]:
    """Combine k self-consistency samples.

    Intensities: the mean per category. Primary: the modal primary over samples (ties: the
    higher mean intensity, then category order). Agreement: the fraction of samples whose
    primary is the modal one (1.0 = unanimous; None for a single sample). The texts
    (rationale, analyses) come from the first sample that chose the modal primary.
    """
    if not labels:
        raise ValueError("no samples to aggregate")
    k = len(labels)
    mean = {n: sum(lb.intensities.get(n, 0.0) for lb in labels) / k for n in names}
    votes = Counter(lb.primary for lb in labels)
    order = {n: i for i, n in enumerate(names)}
    primary = max(votes, key=lambda n: (votes[n], mean.get(n, 0.0), -order.get(n, 0)))
    chosen = next(lb for lb in labels if lb.primary == primary)
    agreement = votes[primary] / k if k > 1 else None
    return mean, chosen, agreement


__all__ = ["OutputSchema", "SampleLabel", "InvalidOutput", "aggregate", "build_output_model", "ANALYSIS_FIELDS",
           "NONVERBAL_EVENTS", "GENDERS", "AGE_RANGES"]
