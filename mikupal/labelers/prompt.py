"""Prompts: versioned Markdown files under `mikupal/labelers/prompts/<version>/` (see its README).

    p = load_prompt("v1", load_taxonomy("cowen_keltner_26"), mode="video")
    p.system                      # task + every category with its description + output format
    p.user_text("I can't believe it!")
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from string import Template
from typing import Iterable

from ..errors import UserError
from ..paths import prompts_dir
from .schema import AGE_RANGES, ANALYSIS_FIELDS, GENDERS, NONVERBAL_EVENTS, delivery_asked

_FIELD_HELP = {
    "face_analysis": "`face_analysis`: what the speaker's face shows over the clip and what it suggests.",
    "voice_analysis": "`voice_analysis`: what the voice conveys (pitch, loudness, tempo, tension, laughter, tremor).",
    "text_analysis": "`text_analysis`: what the words (and the dialogue context, if any) say about the emotion.",
}


@dataclass(frozen=True)
class Prompt:
    version: str
    mode: str
    system: str
    user_template: str
    delivery: bool = False  # the answer also describes how it is said (events, traits, caption)

    @property
    def digest(self) -> str:
        """A short hash of the system prompt and the user template (changes when a file changes)."""
        return hashlib.sha256((self.system + "\0" + self.user_template).encode()).hexdigest()[:12]

    def user_text(self, transcript: str, context: Iterable[str] = (), duration: float = 0.0) -> str:
        """The user turn's text; `duration` (seconds, 0 = unknown) is said where the template has
        `$duration_note` (v2: the event times must lie inside the clip)."""
        context = [c.strip() for c in context if c and c.strip()]
        block = ""
        if self.mode == "text" and context:
            lines = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(context))
            block = f"<context>\nThe utterances just before, oldest first:\n{lines}\n</context>\n\n"
        note = f" (it lasts {duration:.1f} seconds)" if duration > 0 else ""
        return Template(self.user_template).safe_substitute(
            transcript=transcript.strip(), context_block=block, duration_note=note
        ).strip() + "\n"


def _read(folder, name: str) -> str:
    path = folder / name
    if not path.is_file():
        raise UserError(f"prompt file missing: {path}")
    return path.read_text(encoding="utf-8").strip()


def available_versions() -> list[str]:
    return sorted(p.name for p in prompts_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))


def load_prompt(version: str, taxonomy, mode: str = "video") -> Prompt:
    """Render the system prompt of `version` for a taxonomy and a mode (video | audio | text)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", version or ""):
        raise UserError(f"labeler.prompt_version {version!r} is not a folder name")
    folder = prompts_dir() / version
    if not folder.is_dir():
        raise UserError(
            f"labeler.prompt_version={version}: no folder {folder} (available: {', '.join(available_versions())})"
        )
    if mode not in ANALYSIS_FIELDS:
        raise UserError(f"labeler.mode={mode}: expected one of {', '.join(ANALYSIS_FIELDS)}")
    kind = "closed" if taxonomy.closed else "open"
    cats = "\n".join(f"- **{c.name}**: {c.description}" for c in taxonomy.categories)
    categories = Template(_read(folder, f"categories_{kind}.md")).substitute(
        count=len(taxonomy.categories), categories=cats
    )
    fields = "\n".join(f"- {_FIELD_HELP[f]}" for f in ANALYSIS_FIELDS[mode])
    delivery = delivery_asked(mode, (folder / "delivery.md").is_file())
    parts = {"fields": fields, "delivery_fields": "", "caption_field": ""}
    if delivery:
        parts["delivery_fields"] = Template(_read(folder, "delivery_fields.md")).substitute(
            events=", ".join(NONVERBAL_EVENTS), genders=", ".join(GENDERS), ages=", ".join(AGE_RANGES)) + "\n"
        parts["caption_field"] = _read(folder, "caption_field.md")
    output = Template(_read(folder, f"output_format_{kind}.md")).substitute(parts).strip()
    task = _read(folder, f"system_task_{mode}.md")
    blocks = [task, _read(folder, "delivery.md")] if delivery else [task]
    system = "\n\n".join([*blocks, categories, output]) + "\n"
    return Prompt(version=version, mode=mode, system=system, user_template=_read(folder, f"user_{mode}.md"),
                  delivery=delivery)
