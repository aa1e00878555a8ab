"""No module of mikupal imports a layer above its own (docs/architecture.md, "Layers").

Read from the source (`tests/import_graph.py`): module-level and function-level imports, relative
and absolute. The layers, lowest first:

  foundation   errors ids atomic layout reasons taxonomy records committed config media models_dir mel devices
               paths describe, and the package itself: they import one another freely (the cycle test keeps
               them acyclic) and nothing else of mikupal
  nets         pure torch networks
  algorithms   audio/ speaker/ vision/ labelers/: each on the foundation and nets alone; they do
               not import one another (the vision stage, not vision/, embeds voices with speaker/)
  readers      dataset/ report/ evaluate/: what reads a finished output dir, and scores labels;
               the report reads the dataset's rows (`SIDEWAYS`)
  stages       thin adapters over the algorithms
  engine       executors, the collector, the commit
  commands     one module per CLI command: they start runs, so they may import stages/
  entry points cli.py and every `__main__` module: nothing imports them

So a module below engine/ never imports engine/, and only engine/ and commands/ import stages/.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from import_graph import Import, imports

ROOT = Path(__file__).resolve().parents[2]

#: (layer, the top-level modules and packages of mikupal in it), lowest first
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"__init__", "errors", "ids", "atomic", "layout", "reasons", "taxonomy", "records", "committed",
                    "config", "media", "models_dir", "model_check", "paths", "describe", "mel", "devices"}),
    ("nets", {"nets"}),
    ("algorithms", {"audio", "speaker", "vision", "labelers"}),
    ("readers", {"dataset", "report", "evaluate"}),
    ("stages", {"stages"}),
    ("engine", {"engine"}),
    ("commands", {"commands"}),
    ("entry points", {"cli", "__main__"}),
]
#: the layer whose parts import one another freely
OPEN_LAYER = "foundation"
#: imports between two parts of one layer, each with its reason; any other is refused
SIDEWAYS = {("report", "dataset"): "the report's sections read the dataset's rows (dataset/rows.py)"}
#: who may import stages/ (DESIGN: nothing but the engine, and the commands that start runs)
STAGE_IMPORTERS = {"stages", "engine", "commands"}


def part(module: str) -> str:
    """The top-level module or package of mikupal a module belongs to; `__main__` for entry modules."""
    names = module.split(".")
    if names[-1] == "__main__":
        return "__main__"
    return names[1] if len(names) > 1 else "__init__"


def layer(module: str) -> tuple[int, str]:
    """(rank, name) of the module's layer; AssertionError for a part no layer lists."""
    p = part(module)
    for rank, (name, parts) in enumerate(LAYERS):
        if p in parts:
            return rank, name
    raise AssertionError(f"{module}: its part {p!r} is in no layer of tests/unit/test_layers.py: give it one")


def violation(imp: Import) -> str | None:
    """Why `imp` breaks the layering, or None when it keeps it."""
    (rank, name), (to_rank, to_name) = layer(imp.module), layer(imp.target)
    src, dst = part(imp.module), part(imp.target)
    where = f"{imp.module} (layer {name}) imports {imp.target} (layer {to_name}), line {imp.line}: `{imp.statement}`"
    if to_rank > rank:
        return f"{where}: a higher layer"
    if to_rank == rank and src != dst and name != OPEN_LAYER and (src, dst) not in SIDEWAYS:
        return f"{where}: another part of the same layer, not listed in SIDEWAYS"
    if dst == "stages" and src not in STAGE_IMPORTERS:
        return f"{where}: only {', '.join(sorted(STAGE_IMPORTERS))} import stages/"
    return None


def violations(package_dir: Path) -> list[str]:
    return [v for imp in imports(package_dir) if (v := violation(imp))]


def test_no_module_imports_a_higher_layer():
    found = imports(ROOT / "mikupal")
    assert any(i.module == "mikupal.engine.run" and i.target == "mikupal.report.summary" for i in found)
    for imp in found:  # every module is in a layer
        layer(imp.module), layer(imp.target)
    assert violations(ROOT / "mikupal") == []


def test_sideways_imports_listed_are_used():
    """An allowance nothing needs any more is taken out, not left to hide a new import."""
    used = {(part(i.module), part(i.target)) for i in imports(ROOT / "mikupal")}
    assert set(SIDEWAYS) <= used


def test_cli_only_dispatches_to_the_commands():
    from mikupal import cli

    # the errors it prints, the version, and the help page's renderer: nothing that does work
    assert {i.target for i in imports(ROOT / "mikupal") if i.module == "mikupal.cli"} == {
        "mikupal.errors", "mikupal", "mikupal.commands.help"}
    for name, module_name in cli.COMMANDS.items():
        module = importlib.import_module(f"mikupal.commands.{module_name}")
        assert cli.command(name) is getattr(module, f"{module_name}_command") and module.HELP


def test_the_check_names_the_module_the_import_and_both_layers(tmp_path):
    pkg = tmp_path / "mikupal"
    for sub in ("audio", "engine", "report", "vision", "dataset", "stages"):
        (pkg / sub).mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("from . import records\n")  # foundation: one another freely
    (pkg / "records.py").write_text("")
    (pkg / "cli.py").write_text("from .engine import run\n")  # downwards: fine
    (pkg / "audio" / "vad.py").write_text("def f():\n    from ..engine.run import go\n")  # lazy, relative, upwards
    (pkg / "audio" / "__main__.py").write_text("from mikupal.engine import run\n")  # an entry point: fine
    (pkg / "vision" / "track.py").write_text("import mikupal.audio.vad\n")  # same layer, not listed
    (pkg / "report" / "html.py").write_text("from ..dataset.rows import load\n")  # same layer, listed
    (pkg / "report" / "summary.py").write_text("from mikupal.stages.base import x\n")  # stages from below
    (pkg / "dataset" / "rows.py").write_text("")
    (pkg / "stages" / "base.py").write_text("")
    (pkg / "engine" / "run.py").write_text("from .. import errors\n")
    assert violations(pkg) == [
        "mikupal.audio.vad (layer algorithms) imports mikupal.engine.run (layer engine), line 2: "
        "`from ..engine.run import go`: a higher layer",
        "mikupal.report.summary (layer readers) imports mikupal.stages.base (layer stages), line 1: "
        "`from mikupal.stages.base import x`: a higher layer",
        "mikupal.vision.track (layer algorithms) imports mikupal.audio.vad (layer algorithms), line 1: "
        "`import mikupal.audio.vad`: another part of the same layer, not listed in SIDEWAYS",
    ]


def test_stages_are_imported_by_the_engine_and_the_commands_alone():
    importers = {part(i.module) for i in imports(ROOT / "mikupal") if part(i.target) == "stages"}
    assert "engine" in importers and importers <= STAGE_IMPORTERS, importers
