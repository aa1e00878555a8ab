"""Emotion taxonomies (conf/taxonomies/*.yaml): categories, annotator descriptions, plot colors and
mappings onto the label sets of evaluation benchmarks (MELD, IEMOCAP).

    tax = load_taxonomy("cowen_keltner_26")
    tax.map_label("Awe", "meld")                                   # -> "surprise"
    tax.map_intensities({"Joy": 0.4, "Amusement": 0.3, "Anger": 0.5}, "meld")   # -> "joy"
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mikupal.paths import conf_dir

BUILTIN = ("cowen_keltner_26", "meld", "iemocap")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


class TaxonomyError(ValueError):
    """A taxonomy file or lookup is wrong; the message names the file, key or label."""


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str
    color: str

    @field_validator("name", "description")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("color")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.match(v):
            raise ValueError(f"color {v!r} is not a hex string like '#1f77b4'")
        return v


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    closed: bool = False  # True: a single-label evaluation set (MELD, IEMOCAP)
    categories: list[Category] = Field(min_length=1)
    mappings: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Taxonomy":
        names = [c.name for c in self.categories]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate category names: {dupes}")
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError("category names differ only by case")
        for target, mapping in self.mappings.items():
            missing = [n for n in names if n not in mapping]
            unknown = sorted(set(mapping) - set(names))
            if missing:
                raise ValueError(f"mappings.{target} is not total: no target label for {missing}")
            if unknown:
                raise ValueError(f"mappings.{target} maps unknown categories {unknown}")
            empty = [k for k, v in mapping.items() if not str(v).strip()]
            if empty:
                raise ValueError(f"mappings.{target} has empty target labels for {empty}")
        return self

    # ------------------------------------------------------------ queries

    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def category(self, name: str) -> Category:
        return self.categories[self.names().index(self.canonical(name))]

    def colors(self) -> dict[str, str]:
        return {c.name: c.color for c in self.categories}

    def canonical(self, name: str) -> str:
        """The category's spelling in this taxonomy; matching ignores case and surrounding spaces."""
        lookup = self._lookup()
        key = str(name).strip().casefold()
        if key not in lookup:
            raise TaxonomyError(f"{name!r} is not a category of taxonomy {self.name!r}")
        return lookup[key]

    def _lookup(self) -> dict[str, str]:
        return {n.casefold(): n for n in self.names()}

    def _mapping(self, target: str) -> dict[str, str]:
        if target not in self.mappings:
            raise TaxonomyError(
                f"taxonomy {self.name!r} has no mapping to {target!r} (has: {sorted(self.mappings)})"
            )
        return self.mappings[target]

    def map_label(self, category: str, target: str) -> str:
        """The `target` label of one category."""
        return self._mapping(target)[self.canonical(category)]

    def map_intensities(self, intensities: dict[str, float], target: str) -> str:
        """Sum intensities per target label and return the largest (ties: first in category order)."""
        mapping = self._mapping(target)
        if not intensities:
            raise TaxonomyError("no intensities to map")
        totals: dict[str, float] = {mapping[n]: 0.0 for n in self.names()}
        for name, value in intensities.items():
            value = float(value)
            if value < 0 or value != value:
                raise TaxonomyError(f"intensity of {name!r} must be a number >= 0, got {value}")
            totals[mapping[self.canonical(name)]] += value
        return max(totals, key=lambda label: totals[label])


# ---------------------------------------------------------------- loading


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.lower().endswith((".yaml", ".yml")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise TaxonomyError(f"taxonomy file not found: {path}")
        return path
    path = conf_dir() / "taxonomies" / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (conf_dir() / "taxonomies").glob("*.yaml"))
        raise TaxonomyError(
            f"unknown taxonomy {text!r}: no {path} (built-in: {known or list(BUILTIN)}; "
            "or give a path ending in .yaml)"
        )
    return path


def _read(path: Path) -> Taxonomy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TaxonomyError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{path}: expected a mapping with keys name, closed, categories, mappings")
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()
        )
        raise TaxonomyError(f"{path}: invalid taxonomy: {problems}") from None


def _find_target(target: str, near: Path) -> Optional[Path]:
    for folder in (near.parent, conf_dir() / "taxonomies"):
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{target}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """Load a built-in taxonomy by name (cowen_keltner_26, meld, iemocap) or a user's .yaml/.yml file.

    Each mapping's target labels are checked against the target taxonomy when its YAML can be found
    (next to the file, then in the config dir); an unknown target is accepted as is.
    """
    path = _resolve(name_or_path)
    taxonomy = _read(path)
    for target, mapping in taxonomy.mappings.items():
        target_path = _find_target(target, path)
        if target_path is None:
            continue
        valid = set(_read(target_path).names())
        bad = {k: v for k, v in mapping.items() if v not in valid}
        if bad:
            raise TaxonomyError(
                f"{path}: mappings.{target}: labels not in taxonomy {target!r} ({target_path}): {bad}; "
                f"valid: {sorted(valid)}"
            )
    return taxonomy
