import subprocess
import sys

import pytest


def mikupal(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mikupal.cli", *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_subcommands():
    r = mikupal("--help")
    assert r.returncode == 0
    for cmd in ("run", "label", "evaluate", "agreement", "report", "models", "export", "emotion-map", "audio"):
        assert f"\n  {cmd} " in r.stdout


def test_each_command_has_its_own_help_with_keys_defaults_and_an_example():
    from mikupal.cli import COMMANDS

    pages = {}
    for cmd in COMMANDS:
        r = mikupal(cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: mikupal {cmd} "), (cmd, r.stdout, r.stderr)
        assert "keys (key=value; default, why):" in r.stdout and "example" in r.stdout, cmd
        pages[cmd] = r.stdout
    assert len(set(pages.values())) == len(pages)  # no two commands print the same page
    run_keys = {line.split()[0]: line.split()[1] for line in pages["run"].splitlines() if line.startswith("  ") and "  " in line[2:]}
    from mikupal.config import yaml_defaults

    assert run_keys["input"] == "null" and run_keys["labeler"] == "gemini"
    assert run_keys["segment.min_seconds"] == str(yaml_defaults()["segment"]["min_seconds"])  # read from conf/, not typed
    assert "  min_dnsmos " in pages["export"] and "  test_fraction  0.0 " in pages["export"]
    assert mikupal("help", "export").stdout == pages["export"]


def test_version():
    from mikupal import __version__

    r = mikupal("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mikupal {__version__}"


@pytest.mark.parametrize("args, expected", [
    (["asr.modle=tiny.en"], "unknown key 'asr.modle' (did you mean asr.model?)"),
    (["--input", "x"], "unknown option '--input': settings are written key=value (did you mean input=x?)"),
    (["/videos/talk.mp4"], "expected key=value, got '/videos/talk.mp4' (did you mean input=/videos/talk.mp4?)"),
    (["labeler=nonee"], "labeler=nonee: no such choice (did you mean none?) (choices: gemini, none, openai)"),
    (["quality.min_ovr=3"], "unknown key 'quality.min_ovr' (did you mean quality.min_ovrl?)"),
])
def test_config_mistakes_are_one_line_with_the_likely_fix(tmp_path, args, expected):
    r = mikupal("run", f"output={tmp_path}/out", *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert expected in r.stderr and "hydra" not in r.stderr.lower() and "Exception" not in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_export_filter_typo_names_the_key_and_the_fix(tmp_path):
    r = mikupal("export", f"input={tmp_path}", "format=list", f"output={tmp_path}/x", "min_dnsmo=3")
    assert r.returncode == 2 and "unknown key 'min_dnsmo' (did you mean min_dnsmos?)" in r.stderr, r.stderr
    r = mikupal("export", "--input", str(tmp_path))
    assert r.returncode == 2 and f"did you mean input={tmp_path}?" in r.stderr, r.stderr


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_path_mistakes_are_one_line_and_create_nothing(tmp_path, media):
    afile = tmp_path / "taken.txt"
    afile.write_text("not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    before = _tree(tmp_path)
    cases = [
        (["run", f"input={media / 'vr_face1.mp4'}", f"output={afile}"], "output is a file, not a folder"),
        (["run", f"input={empty}", f"output={tmp_path}/out"], "input folder has no media files"),
        (["export", f"input={tmp_path}", "format=list", f"output={afile}"], "output is a file, not a folder"),
    ]
    for args, expected in cases:
        r = mikupal(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert _tree(tmp_path) == before, args  # nothing made: no out/, no .lock, no logs/


def test_report_rebuilds_the_page_and_the_emotion_map_has_its_own_command(tmp_path):
    from tests.dataset_fixtures import make_output

    out = make_output(tmp_path / "out")
    html = out / "report.html"
    html.unlink(missing_ok=True)
    r = mikupal("report", f"input={out}")
    assert r.returncode == 0 and r.stdout.strip() == f"rebuilt {html} from 3 committed videos", (r.stdout, r.stderr)
    assert html.is_file() and "vida" in html.read_text() and (out / "report.json").is_file()
    r = mikupal("report", f"map={out}")
    assert r.returncode == 2 and "mikupal emotion-map input=DIR" in r.stderr
    r = mikupal("report", f"input={tmp_path}")
    assert r.returncode == 2 and "holds no committed video" in r.stderr


def test_missing_input_is_one_line(tmp_path):
    r = mikupal("run", f"input={tmp_path}/nope.mp4", f"output={tmp_path}/out")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "input not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_override_is_one_line(tmp_path):
    r = mikupal("run", f"input={tmp_path}", f"output={tmp_path}/out", "asr.bogus=1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "asr.bogus" in r.stderr


def test_unknown_command():
    r = mikupal("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_models_reports_missing_files_offline(tmp_path):
    r = mikupal("models", f"models_dir={tmp_path}")
    assert r.returncode == 1  # what the configuration needs is missing
    assert "MISSING" in r.stdout and "light-asd/pretrain_AVA_CVPR.model" in r.stdout


def test_the_audio_front_end_is_a_command():
    """`mikupal audio FILE` (commands/audio_frontend.py): the audio package has no entry point of its own."""
    r = mikupal("audio")
    assert r.returncode == 2 and "no file given: mikupal audio FILE" in r.stderr, r.stderr
    r = mikupal("audio", "/nonexistent.wav", "separation=none", "asr.model=tiny.en", "offline=true", "profile=cpu")
    assert r.returncode == 0 and '"type": "summary"' in r.stdout
