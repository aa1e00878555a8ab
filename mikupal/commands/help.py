"""`mikupal COMMAND --help`: what the command does, the keys that matter with their defaults, and
an example. Each command module holds its `HELP` (a `CommandHelp`); the defaults are read where
they live (the composed YAML for `run`-style commands, the argument model for the others), so the
page never drifts from what the command does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


@dataclass(frozen=True)
class CommandHelp:
    usage: str  # "mikupal run input=PATH output=DIR [key=value ...]"
    what: str  # a paragraph: what it does and what it writes
    keys: list[tuple[str, str]]  # (key, why), in the order a user needs them
    examples: list[str]
    #: where the defaults come from: None = the run configuration (conf/), else the argument model
    model: Optional[type[BaseModel]] = None
    flags: list[tuple[str, str]] = field(default_factory=list)  # (--flag, why)
    notes: str = ""


def _run_default(key: str) -> str:
    """The default of a dotted run key (a group's default choice for a group name)."""
    from ..config import config_groups, yaml_defaults

    if key in config_groups():
        return _group_default(key)
    value: Any = yaml_defaults()
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return "-"
        value = value[part]
    return _show(value)


def _group_default(group: str) -> str:
    import yaml

    from ..paths import conf_dir

    data = yaml.safe_load((conf_dir() / "config.yaml").read_text(encoding="utf-8"))
    for entry in data.get("defaults", []):
        if isinstance(entry, dict) and group in entry:
            return str(entry[group])
    return "-"


def _model_default(model: type[BaseModel], key: str) -> str:
    f = model.model_fields.get(key)
    if f is None:
        return "-"
    if f.default_factory is not None:
        return _show(f.default_factory())
    if f.default is PydanticUndefined:
        return "(required)"
    return _show(f.default)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def render(h: CommandHelp) -> str:
    rows = [(k, _model_default(h.model, k) if h.model is not None else _run_default(k), why) for k, why in h.keys]
    kw = max(len(k) for k, _, _ in rows)
    dw = min(24, max(len(d) for _, d, _ in rows))
    lines = [f"usage: {h.usage}", "", h.what.strip(), "", "keys (key=value; default, why):"]
    lines += [f"  {k:<{kw}}  {d:<{dw}}  {why}" for k, d, why in rows]
    if h.flags:
        fw = max(len(f) for f, _ in h.flags)
        lines += ["", "flags:"] + [f"  {f:<{fw}}  {why}" for f, why in h.flags]
    if h.notes:
        lines += ["", h.notes.strip()]
    lines += ["", "example:" if len(h.examples) == 1 else "examples:"] + [f"  {e}" for e in h.examples]
    return "\n".join(lines) + "\n"
